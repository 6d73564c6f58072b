"""`settings.webServer` served by `kdeps run`: static folders and reverse proxies to local apps.

The web routes share the API's listener unless `webServer.portNum` names another port, as KDeps
does; a workflow without an `apiServer` (or without resources) serves the web routes alone. On a
shared port the API's own routes win over a web route that would also match (e.g. `/`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import uvicorn
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kdeps.errors import KdepsError
from kdeps.server.config import ServerSettings
from kdeps.server.webproxy import AppProxy, header, plain

log = logging.getLogger("kdeps.webserver")

# KDeps sends these on web routes too (no CSP there: it would break the pages and proxied apps).
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
COMMAND_STOP_GRACE = 5.0
WORKER_ENV = "KDEPS_SERVE_OPTIONS"  # set by the runner for worker and reload child processes
# Paths the API answers itself on a shared port, even under a web route such as "/".
_API_PATHS = ("/health", "/ready", "/metrics")


@dataclass(frozen=True, slots=True)
class WebRoutePlan:
    """One resolved web route."""

    prefix: str  # "" for "/", else "/docs" (no trailing slash)
    kind: Literal["static", "app"]
    directory: Path | None  # publicPath, resolved against the agent folder
    app_port: int | None
    command: str | None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def path(self) -> str:
        return self.prefix or "/"

    def matches(self, path: str) -> bool:
        return not self.prefix or path == self.prefix or path.startswith(self.prefix + "/")

    def rest(self, path: str) -> str:
        """The request path below the route prefix (what the folder or app sees)."""
        rest = path[len(self.prefix):]
        return rest if rest.startswith("/") else "/" + rest

    def describe(self) -> str:
        if self.kind == "static":
            return f"  {self.path} -> static files in {self.directory}"
        started = f" (started with: {self.command})" if self.command else ""
        return f"  {self.path} -> app on 127.0.0.1:{self.app_port}{started}"


@dataclass(frozen=True, slots=True)
class WebServerPlan:
    """Where and what the web server serves, resolved once at startup."""

    routes: tuple[WebRoutePlan, ...]  # longest prefix first
    standalone: bool  # no API: the web routes are all this agent serves
    host: str | None  # a listener of its own; None: the API's listener
    port: int | None
    max_body: int | None = None
    max_concurrent: int | None = None
    rate_per_minute: int | None = None
    burst: int | None = None

    def match(self, path: str) -> WebRoutePlan | None:
        return next((r for r in self.routes if r.matches(path)), None)

    def listen_settings(self, api: ServerSettings) -> ServerSettings:
        """Settings for the single listener of a standalone web server (no API routes)."""
        return dataclasses.replace(api, host=self.host or api.host, port=self.port or api.port, routes=[])

    def app(self, api: ASGIApp | None, api_claims: Callable[[str], bool] | None = None) -> WebServerApp:
        return WebServerApp(self, api, api_claims)


def plan_web_server(project: Any, base_dir: Path, api: ServerSettings) -> WebServerPlan | None:
    """The web server of `project`, or None when its workflow has no `webServer` routes."""
    settings = project.workflow.settings
    web = settings.web_server
    if web is None or not web.routes:
        return None
    routes = []
    for route in web.routes:
        public = route.public_path
        directory = None
        if public:
            directory = Path(public) if Path(public).is_absolute() else base_dir / public
            directory = directory.resolve()
        if route.command and directory is not None and not directory.is_dir():
            raise KdepsError(f"webServer route {route.path}: publicPath {directory} is not a folder, "
                             f"so '{route.command}' cannot start there")
        headers = tuple((str(k), str(v)) for k, v in route.headers.items())
        routes.append(WebRoutePlan(route.path.rstrip("/"), route.server_type, directory, route.app_port,
                                   route.command or None, headers))
    routes.sort(key=lambda r: len(r.prefix), reverse=True)
    own_port, own_host = web.port_num, web.host_ip
    standalone = "api_server" not in settings.model_fields_set or not project.resources
    if standalone:
        host, port = own_host, own_port
    elif own_port is not None and own_port != api.port:
        host, port = own_host or api.host, own_port
    else:
        host = port = None
    limit = web.rate_limit
    return WebServerPlan(tuple(routes), standalone, host, port, max_body=web.max_body_bytes,
                         max_concurrent=web.max_concurrent,
                         rate_per_minute=limit.requests_per_minute if limit else None,
                         burst=limit.burst if limit else None)


def api_route_claims(api_app: Any) -> Callable[[str], bool]:
    """Whether the API on a shared listener answers `path` itself (a route, or /health etc.)."""
    core = getattr(api_app, "core", None)
    router = getattr(core, "router", None)
    openai = bool(getattr(core, "openai_compat", False))

    def claims(path: str) -> bool:
        if path in _API_PATHS or (openai and path.startswith("/v1/")):
            return True
        return bool(router is not None and router.path_methods(path))

    return claims


class WebServerApp:
    """ASGI app: web routes first (unless the API claims the path), everything else to the API.
    Owns the lifespan of the app commands and of a separate web listener."""

    def __init__(self, plan: WebServerPlan, api: ASGIApp | None,
                 api_claims: Callable[[str], bool] | None = None) -> None:
        self.plan = plan
        self.api = api
        self.api_claims = api_claims or (api_route_claims(api) if api is not None else (lambda _p: False))
        self.static = {r: StaticFiles(directory=r.directory, html=True, check_dir=False)
                       for r in plan.routes if r.kind == "static" and r.directory is not None}
        self.commands: list[asyncio.subprocess.Process] = []
        self.proxy = AppProxy()
        self.listener: _Listener | None = None
        self.listener_task: asyncio.Task[None] | None = None
        self.in_flight = 0
        self.state = getattr(api, "state", None)  # what tests and tools read off the API app
        self.core = getattr(api, "core", None)
        self.buckets: dict[str, tuple[float, float]] = {}
        # the web routes on a listener of their own; the API keeps its port
        self.separate = not plan.standalone and plan.port is not None

    # -- dispatch ---------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if self.separate and self.api is not None:
            await self.api(scope, receive, send)  # the web routes have a listener of their own
            return
        await self.dispatch(scope, receive, send, shared=not self.plan.standalone)

    async def dispatch(self, scope: Scope, receive: Receive, send: Send, *, shared: bool) -> None:
        path = scope.get("path", "/")
        route = None
        if not (shared and self.api is not None and self.api_claims(path)):
            route = self.plan.match(path)
        if route is None:
            if shared and self.api is not None:
                await self.api(scope, receive, send)
            else:
                await plain(scope, send, 404, "Not Found")
            return
        if scope["type"] == "websocket":
            if route.kind == "app":
                await self.proxy.websocket(route, scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 1003})
            return
        if scope["type"] != "http":
            return
        send = _with_security_headers(send)
        refusal = self._admit(scope)
        if refusal is not None:
            await plain(scope, send, *refusal)
            return
        self.in_flight += 1
        try:
            if route.kind == "static":
                await self._static(route, scope, receive, send)
            else:
                await self.proxy.http(route, scope, receive, send)
        finally:
            self.in_flight -= 1

    def _admit(self, scope: Scope) -> tuple[int, str, dict[str, str]] | None:
        """webServer.maxConcurrent, maxBodyBytes and rateLimit (per client address)."""
        plan = self.plan
        if plan.max_concurrent and self.in_flight >= plan.max_concurrent:
            return 503, "Service Unavailable", {"retry-after": "1"}
        if plan.max_body is not None:
            length = header(scope, b"content-length")
            if length is not None and (not length.isdigit() or int(length) > plan.max_body):
                return 413, "Payload Too Large", {}
        if plan.rate_per_minute:
            ip = scope["client"][0] if scope.get("client") else ""
            rate = plan.rate_per_minute / 60.0
            capacity = float(plan.burst or plan.rate_per_minute)
            now = time.monotonic()
            tokens, last = self.buckets.get(ip, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens < 1:
                self.buckets[ip] = (tokens, now)
                return 429, "Too Many Requests", {"retry-after": str(max(1, int((1 - tokens) / rate)))}
            self.buckets[ip] = (tokens - 1, now)
            if len(self.buckets) > 10000:  # forget idle clients rather than grow without bound
                self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < 60}
        return None

    # -- static files -----------------------------------------------------------------------------
    async def _static(self, route: WebRoutePlan, scope: Scope, receive: Receive, send: Send) -> None:
        files = self.static.get(route)
        if files is None or route.directory is None or not route.directory.is_dir():
            await plain(scope, send, 404, "Not Found")
            return
        # StaticFiles serves the path below root_path; it refuses anything resolving outside its folder.
        child = {**scope, "root_path": scope.get("root_path", "") + route.prefix}
        try:
            await files(child, receive, send)
        except HTTPException as exc:
            await plain(scope, send, exc.status_code, str(exc.detail), dict(exc.headers or {}))

    # -- lifespan: app commands and a separate listener -------------------------------------------
    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Start the web side, then the API's own lifespan (driven through queues); stop in reverse.
        A failure is reported through the protocol, so uvicorn prints one line and exits."""
        inner = _InnerLifespan(self.api, scope) if self.api is not None and not self.plan.standalone else None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                failure = None
                try:
                    await self.startup()
                except (KdepsError, OSError) as exc:
                    failure = str(exc)
                if failure is None and inner is not None:
                    failure = await inner.startup()
                if failure is not None:
                    await self.shutdown()
                    await send({"type": "lifespan.startup.failed", "message": failure})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if inner is not None:
                    await inner.shutdown()
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        plan = self.plan
        if plan.standalone:
            print("Serving webServer routes only (no apiServer):", flush=True)
        elif plan.port is not None:
            await self._start_listener(plan.host or "127.0.0.1", plan.port)
            print(f"Starting web server on {plan.host}:{plan.port}", flush=True)
        else:
            print("Serving webServer routes on the API port:", flush=True)
        for route in plan.routes:
            print(route.describe(), flush=True)
            if route.kind == "static" and route.directory is not None and not route.directory.is_dir():
                log.warning("web route %s: publicPath %s is not a folder; it answers 404", route.path,
                            route.directory)
        for route in plan.routes:
            if route.kind == "app" and route.command:
                await self._start_command(route)

    async def shutdown(self) -> None:
        if self.listener is not None:
            self.listener.should_exit = True
            if self.listener_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.listener_task, COMMAND_STOP_GRACE)
        for process in self.commands:
            await _stop(process)
        self.commands.clear()
        await self.proxy.close()

    async def _start_command(self, route: WebRoutePlan) -> None:
        cwd = route.directory or Path.cwd()
        if not cwd.is_dir():
            raise KdepsError(f"webServer route {route.path}: publicPath {cwd} is not a folder; "
                             f"cannot start '{route.command}'")
        assert route.command is not None
        process = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", route.command, cwd=str(cwd), stdin=asyncio.subprocess.DEVNULL,
            stdout=sys.stderr.fileno(), start_new_session=True,
        )
        log.info("web route %s: started '%s' (pid %s)", route.path, route.command, process.pid)
        self.commands.append(process)

    async def _start_listener(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if os.environ.get(WORKER_ENV):  # `--workers N`: every worker process binds the same port
            with contextlib.suppress(AttributeError, OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise KdepsError(f"webServer cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        sock.listen(2048)
        sock.setblocking(False)

        async def web_only(scope: Scope, receive: Receive, send: Send) -> None:
            await self.dispatch(scope, receive, send, shared=False)

        config = uvicorn.Config(web_only, lifespan="off", log_config=None, access_log=False,
                                server_header=False, proxy_headers=False, log_level="warning")
        self.listener = _Listener(config)
        self.listener_task = asyncio.create_task(self.listener.serve(sockets=[sock]))
        while not self.listener.started and not self.listener_task.done():
            await asyncio.sleep(0.01)


class _InnerLifespan:
    """Runs the API app's lifespan as a child: this app plays the server's part for it."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self.to_app: asyncio.Queue[Message] = asyncio.Queue()
        self.from_app: asyncio.Queue[Message] = asyncio.Queue()
        self.task = asyncio.ensure_future(app(scope, self.to_app.get, self._put))

    async def _put(self, message: Message) -> None:
        await self.from_app.put(message)

    async def _exchange(self, kind: str) -> Message:
        await self.to_app.put({"type": kind})
        getter = asyncio.ensure_future(self.from_app.get())
        await asyncio.wait({getter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        error = self.task.exception() if not self.task.cancelled() else None
        return {"type": f"{kind}.failed", "message": str(error or "the API's lifespan ended early")}

    async def startup(self) -> str | None:
        reply = await self._exchange("lifespan.startup")
        return None if reply["type"] == "lifespan.startup.complete" else str(reply.get("message", ""))

    async def shutdown(self) -> None:
        if not self.task.done():
            await self._exchange("lifespan.shutdown")
        with contextlib.suppress(BaseException):
            await self.task


class _Listener(uvicorn.Server):
    """A uvicorn server sharing the main server's event loop; the main server owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the command's process group, SIGKILL it if it does not exit in time."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), COMMAND_STOP_GRACE)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


def _with_security_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {bytes(k).lower() for k, _ in headers}
            headers.extend((k, v) for k, v in SECURITY_HEADERS if k not in present)
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


