"""`kdeps run PATH`: load the agent, build the app and serve it with uvicorn (uvloop + httptools
when installed). One process by default; `workers > 1` uses uvicorn's multi-process supervisor (each
child rebuilds the app through `app_from_env`); `dev` swaps in each good edit (`server.devreload`)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from kdeps.errors import KdepsError
from kdeps.server.app import create_app
from kdeps.server.auth import banner_line, require_token, resolve_token
from kdeps.server.config import ServerSettings, settings_from_project

_ENV_KEY = "KDEPS_SERVE_OPTIONS"
GRACEFUL_SHUTDOWN_SECONDS = 30


def setup_logging(level: str = "info", fmt: str = "auto") -> None:
    """Request lines and server messages go to stderr: text on a terminal, JSON otherwise (kdeps.logs);
    traces go to OTEL_EXPORTER_OTLP_ENDPOINT when it is set (kdeps.observability)."""
    from kdeps.logs import configure
    from kdeps.observability import setup_tracing

    configure(level, fmt)
    setup_tracing()  # only when OTEL_EXPORTER_OTLP_ENDPOINT is set


def _agent_dir(path: str | Path) -> Path:
    p = Path(path).resolve()
    return p.parent if p.is_file() else p


def build_app(path: str | Path, *, openai_compat: bool = False, max_body: int | None = None,
              max_concurrency: int | None = None, project: Any = None,
              ui: bool = False) -> tuple[ASGIApp, ServerSettings]:
    """Load the agent at `path` (unless `project` is given) and return the ASGI app and its settings."""
    from kdeps.engine import Engine

    if project is None:
        from kdeps.spec import load_project

        project = load_project(path)
    settings = settings_from_project(project)
    from kdeps.server.webserver import plan_web_server

    web = plan_web_server(project, _agent_dir(path), settings)
    if web is not None and web.standalone:
        return web.app(None), web.listen_settings(settings)
    openai_compat = openai_compat or bool(getattr(project.workflow.settings, "openai_compat", False))
    app = create_app(project, Engine(project), max_body=max_body, max_concurrency=max_concurrency,
                     openai_compat=openai_compat, base_dir=_agent_dir(path), settings=settings, ui=ui)
    return (app if web is None else web.app(app)), settings


def app_from_env() -> ASGIApp:
    """App factory for worker and reload child processes (options travel in an env var)."""
    options = json.loads(os.environ[_ENV_KEY])
    setup_logging(options.pop("log_level", "info"), options.pop("log_format", "auto"))
    app, _ = build_app(options.pop("path"), **options)
    return app


def http_protocol() -> Any:
    """The HTTP protocol `kdeps run` serves with: uvicorn's httptools protocol with the head and body
    guards of kdeps.server.limits (uvicorn's choice when httptools is missing)."""
    from kdeps.server import limits

    return getattr(limits, "GuardedHttpToolsProtocol", "auto")


def _announce(host: str, port: int, settings: ServerSettings) -> None:
    from kdeps.server.banner import lines

    print("\n".join(lines(host, port, settings)), flush=True)


class _Server(uvicorn.Server):
    """Prints the banner only once the socket is listening."""

    def __init__(self, config: uvicorn.Config, on_ready: Any = None, on_exit: Any = None) -> None:
        super().__init__(config)
        self._on_ready, self._on_exit = on_ready, on_exit

    def handle_exit(self, sig: int, frame: Any) -> None:
        # Runs in the signal handler: /ready turns 503 before uvicorn closes the listener and
        # waits (up to GRACEFUL_SHUTDOWN_SECONDS) for in-flight requests and streams.
        if self._on_exit is not None:
            self._on_exit()
        super().handle_exit(sig, frame)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown, which would end the process
        # "killed by signal"; a clean shutdown should exit 0 instead.
        with super().capture_signals():
            yield
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()


def serve(path: str | Path, host: str | None = None, port: int | None = None, workers: int = 1,
          dev: bool = False, *, openai_compat: bool = False, max_body: int | None = None,
          max_concurrency: int | None = None, log_level: str = "info", log_format: str = "auto",
          project: Any = None, ui: bool = False) -> None:
    """Serve the agent at `path` until SIGINT/SIGTERM; in-flight requests finish before exit.
    `project` skips loading when the caller already has it. Exits with status 1 and a one-line
    message (no traceback) when the agent cannot be served, e.g. an unset authToken variable.
    `ui` (on with `dev`) serves the playground at / and the API docs at /docs."""
    ui = ui or dev
    setup_logging(log_level, log_format)
    waiting = False
    try:
        app, settings = build_app(path, openai_compat=openai_compat, max_body=max_body,
                                  max_concurrency=max_concurrency, project=project, ui=ui)
    except KdepsError as err:
        if not dev:
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        from kdeps.server.devreload import waiting_app

        app, settings = waiting_app(err), ServerSettings()  # until the first good edit
        waiting = True
    host = host or settings.host
    port = settings.port if port is None else port
    core = getattr(getattr(app, "state", None), "kdeps", None)
    openai = bool(getattr(core, "openai_compat", False))
    playground = getattr(core, "ui", None)
    auth = core.auth.enabled if core is not None else None  # None: no API (a web server alone)
    if waiting:  # the fixed agent will serve its API here: the same rule from the start
        auth = resolve_token(None) is not None
    if auth is not None:
        try:
            require_token(auth, host)
        except KdepsError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
    common: dict[str, Any] = {
        "host": host, "port": port, "proxy_headers": False, "server_header": False, "access_log": False,
        "log_config": None, "log_level": "warning" if log_level != "debug" else "debug",
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS, "lifespan": "on",
        "http": http_protocol(),
    }
    served: Any = app
    if dev:  # one process that swaps in each good edit (kdeps.server.devreload)
        from kdeps.server.devreload import DevApp

        served = DevApp(_agent_dir(path), app, lambda: build_app(
            path, openai_compat=openai_compat, max_body=max_body, max_concurrency=max_concurrency, ui=ui)[0])
    if workers <= 1 or dev:
        config = uvicorn.Config(served, **common)
        server = _Server(config, on_ready=lambda: _announce_all(host, port, settings, openai, playground,
                                                                  auth),
                         on_exit=functools.partial(drain, served))
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        if not server.started:
            sys.exit(1)
        return

    os.environ[_ENV_KEY] = json.dumps({"path": str(Path(path).resolve()), "openai_compat": openai_compat,
                                       "max_body": max_body, "max_concurrency": max_concurrency,
                                       "log_level": log_level, "log_format": log_format, "ui": ui})
    del app, core  # each child builds its own
    config = uvicorn.Config("kdeps.server.runner:app_from_env", factory=True, workers=workers, **common)
    sock = config.bind_socket()
    _announce_all(host, port, settings, openai, playground, auth)
    try:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass


def drain(app: Any) -> None:
    """Mark the app as shutting down: its /ready answers 503 from now on."""
    core = getattr(getattr(app, "state", None), "kdeps", None)
    if core is not None:
        core.draining = True


def _announce_all(host: str, port: int, settings: ServerSettings, openai: bool,
                  playground: Any = None, auth: bool | None = None) -> None:
    """The banner, with the OpenAI-compatible routes when they are served, whether auth is on, and
    the playground's URL."""
    _announce(host, port, settings)
    if auth is not None:
        print(banner_line(auth), flush=True)
    if openai:
        from kdeps.server.openai_compat import banner

        print("\n".join(banner()), flush=True)
    if playground is not None:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        base = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}"
        print(f"Playground: {base}{playground.page_path}  API docs: {base}/docs", flush=True)

