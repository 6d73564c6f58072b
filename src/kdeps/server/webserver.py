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
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
import uvicorn
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from yarl import URL

from kdeps.errors import KdepsError
from kdeps.server.config import ServerSettings

log = logging.getLogger("kdeps.webserver")

# KDeps sends these on web routes too (no CSP there: it would break the pages and proxied apps).
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
# RFC 9110 7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade",
})
APP_HEADER_TIMEOUT = 30.0  # seconds to wait for a proxied app's response headers, as KDeps
COMMAND_STOP_GRACE = 5.0
WORKER_ENV = "KDEPS_SERVE_OPTIONS"  # set by the runner for worker and reload child processes
_ENV_REF = re.compile(r"""\{\{\s*env\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\)\s*\}\}""")
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
        self.session: aiohttp.ClientSession | None = None
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
                await _plain(scope, send, 404, "Not Found")
            return
        if scope["type"] == "websocket":
            if route.kind == "app":
                await self._proxy_websocket(route, scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 1003})
            return
        if scope["type"] != "http":
            return
        send = _with_security_headers(send)
        refusal = self._admit(scope)
        if refusal is not None:
            await _plain(scope, send, *refusal)
            return
        self.in_flight += 1
        try:
            if route.kind == "static":
                await self._static(route, scope, receive, send)
            else:
                await self._proxy_http(route, scope, receive, send)
        finally:
            self.in_flight -= 1

    def _admit(self, scope: Scope) -> tuple[int, str, dict[str, str]] | None:
        """webServer.maxConcurrent, maxBodyBytes and rateLimit (per client address)."""
        plan = self.plan
        if plan.max_concurrent and self.in_flight >= plan.max_concurrent:
            return 503, "Service Unavailable", {"retry-after": "1"}
        if plan.max_body is not None:
            length = _header(scope, b"content-length")
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
            await _plain(scope, send, 404, "Not Found")
            return
        # StaticFiles serves the path below root_path; it refuses anything resolving outside its folder.
        child = {**scope, "root_path": scope.get("root_path", "") + route.prefix}
        try:
            await files(child, receive, send)
        except HTTPException as exc:
            await _plain(scope, send, exc.status_code, str(exc.detail), dict(exc.headers or {}))

    # -- reverse proxy ----------------------------------------------------------------------------
    def _target(self, route: WebRoutePlan, scope: Scope, ws: bool = False) -> URL:
        raw = scope.get("raw_path") or scope["path"].encode()
        raw_path = raw.decode("latin-1")
        if route.prefix and raw_path.startswith(route.prefix):
            raw_path = raw_path[len(route.prefix):]
        if not raw_path.startswith("/"):
            raw_path = "/" + raw_path
        query = scope.get("query_string", b"").decode("latin-1")
        scheme = "ws" if ws else "http"
        return URL(f"{scheme}://127.0.0.1:{route.app_port}{raw_path}" + (f"?{query}" if query else ""),
                   encoded=True)

    def _forward_headers(self, route: WebRoutePlan, scope: Scope, *,
                         ws: bool = False) -> list[tuple[str, str]]:
        named = {n.strip().lower() for n in (_header(scope, b"connection") or "").split(",")}
        out: list[tuple[str, str]] = []
        host = ""
        forwarded_for = ""
        for raw_name, raw_value in scope.get("headers", []):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if name == "host":
                host = value
                continue
            if name == "x-forwarded-for":
                forwarded_for = value
                continue
            if name in HOP_BY_HOP or name in named or (ws and name.startswith("sec-websocket-")):
                continue
            out.append((name, value))
        peer = scope["client"][0] if scope.get("client") else ""
        out.append(("x-forwarded-for", f"{forwarded_for}, {peer}" if forwarded_for else peer))
        if host:
            out.append(("x-forwarded-host", host))
        out.append(("x-forwarded-proto", "https" if scope.get("scheme") in ("https", "wss") else "http"))
        for name, value in route.headers:
            out = [(n, v) for n, v in out if n != name.lower()]
            out.append((name.lower(), _ENV_REF.sub(lambda m: os.environ.get(m.group(1), ""), value)))
        return out

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(
                auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            )
        return self.session

    async def _proxy_http(self, route: WebRoutePlan, scope: Scope, receive: Receive, send: Send) -> None:
        headers = self._forward_headers(route, scope)
        has_body = _header(scope, b"content-length") not in (None, "0") or \
            _header(scope, b"transfer-encoding") is not None
        disconnected = asyncio.Event()

        async def request_body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected.set()
                    return
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body"):
                    return

        url = self._target(route, scope)
        try:
            async with asyncio.timeout(APP_HEADER_TIMEOUT):
                upstream = await self._session().request(
                    scope["method"], url, headers=headers, data=request_body() if has_body else None,
                    allow_redirects=False, skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding",
                                                              "Content-Type"),
                )
        except TimeoutError:
            await _plain(scope, send, 504, f"Gateway Timeout: the app on port {route.app_port} is silent")
            return
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("web route %s: app on 127.0.0.1:%s unreachable: %s", route.path, route.app_port, exc)
            await _plain(scope, send, 502, f"Bad Gateway: the app on port {route.app_port} is not reachable")
            return
        async with upstream:
            named = {n.strip().lower() for n in upstream.headers.get("connection", "").split(",")}
            # uvicorn sends its own Date header
            drop = HOP_BY_HOP | named | {"date"}
            kept = [(k, v) for k, v in upstream.raw_headers if k.decode("latin-1").lower() not in drop]
            await send({"type": "http.response.start", "status": upstream.status, "headers": kept})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            watcher = asyncio.create_task(_wait_disconnect(receive, disconnected))
            try:
                async for chunk in _chunks(upstream, watcher):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            finally:
                watcher.cancel()

    async def _proxy_websocket(self, route: WebRoutePlan, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        offered = (_header(scope, b"sec-websocket-protocol") or "").split(",")
        protocols = [p.strip() for p in offered if p.strip()]
        try:
            upstream = await self._session().ws_connect(
                self._target(route, scope, ws=True), headers=self._forward_headers(route, scope, ws=True),
                protocols=protocols, autoping=True, timeout=aiohttp.ClientWSTimeout(ws_close=5),
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("web route %s: websocket to app on port %s failed: %s", route.path, route.app_port,
                        exc)
            await send({"type": "websocket.close", "code": 1011})
            return
        await send({"type": "websocket.accept", "subprotocol": upstream.protocol})

        async def client_to_app() -> None:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    await upstream.send_bytes(message["bytes"])
                elif message.get("text") is not None:
                    await upstream.send_str(message["text"])

        async def app_to_client() -> None:
            async for message in upstream:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await send({"type": "websocket.send", "text": message.data})
                elif message.type == aiohttp.WSMsgType.BINARY:
                    await send({"type": "websocket.send", "bytes": message.data})
                else:
                    break
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": upstream.close_code or 1000})

        tasks = [asyncio.create_task(client_to_app()), asyncio.create_task(app_to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await upstream.close()

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
        if self.session is not None:
            await self.session.close()

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


async def _chunks(upstream: aiohttp.ClientResponse, watcher: asyncio.Task[None]) -> AsyncIterator[bytes]:
    """The app's response body as it arrives; stops when the client goes away."""
    while True:
        read = asyncio.ensure_future(upstream.content.readany())
        done, _ = await asyncio.wait({read, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if read not in done:
            read.cancel()
            return
        chunk = read.result()
        if not chunk:
            return
        yield chunk


async def _wait_disconnect(receive: Receive, disconnected: asyncio.Event) -> None:
    if disconnected.is_set():
        return
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _with_security_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {bytes(k).lower() for k, _ in headers}
            headers.extend((k, v) for k, v in SECURITY_HEADERS if k not in present)
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


async def _plain(scope: Scope, send: Send, status: int, text: str,
                 headers: dict[str, str] | None = None) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = (text + "\n").encode()
    raw = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})
