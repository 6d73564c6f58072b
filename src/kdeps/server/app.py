"""The ASGI application: limits, auth, CORS, routing, request parsing, sessions, then the engine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.routing import Mount
from starlette.types import Message, Receive, Scope, Send

from kdeps import observability
from kdeps.engine.request import RequestData, ResponseData, UploadedFile
from kdeps.server import metrics, openai_compat
from kdeps.server.auth import UNAUTHORIZED, ApiAuth, resolve_token, with_api_headers
from kdeps.server.config import ServerSettings, settings_from_project
from kdeps.server.cors import Cors
from kdeps.server.incoming import (
    BodyTooLarge,
    HTTPError,
    client_ip,
    is_trusted,
    parse_body,
    parse_networks,
    query_dict,
    read_multipart,
)
from kdeps.server.routing import Router
from kdeps.server.streaming import (
    KEEPALIVE,
    KEEPALIVE_SECONDS,
    SSE_HEADERS,
    EngineRun,
    ResponseSender,
    error_body,
    failure,
    json_bytes,
    sse,
    wants_event_stream,
)
from kdeps.session import SessionStore, SessionTooLarge, create_store

if TYPE_CHECKING:
    from kdeps.engine.runner import Engine
    from kdeps.spec.loader import Project

SESSION_COOKIE = "kdeps_session"
SESSION_HEADER = "x-session-id"
PROBE_PATHS = ("/health", "/ready", metrics.PATH)
_ID_OK = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
_SKIP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})

access_log = logging.getLogger("kdeps.access")
error_log = logging.getLogger("kdeps.server")



_json_bytes = json_bytes
__all__ = ["KdepsASGI", "create_app", "error_body"]


class _Reply:
    """A response to send whole, or (`sent`) the record of one the handler sent itself."""

    __slots__ = ("body", "headers", "resources", "route", "sent", "session_changed", "status")

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}
        self.route: str | None = None
        self.resources: Any = None
        self.session_changed = False
        self.sent = False

    @classmethod
    def error(cls, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> _Reply:
        return cls(status, _json_bytes(error_body(message, **extra)),
                   {**(headers or {}), "content-type": "application/json"})


class KdepsASGI:
    """One instance serves every request of a process. Holds no per-request state."""

    def __init__(self, engine: Any, settings: ServerSettings, store: SessionStore, *, max_body: int,
                 max_concurrency: int, auth_token: str | None, openai_compat: bool = False,
                 model_name: str = "kdeps", ui: Any = None) -> None:
        self.engine = engine
        self.settings = settings
        self.store = store
        self.router = Router(settings.routes)
        self.cors = Cors(settings.cors)
        self.trusted = parse_networks(settings.trusted_proxies)
        self.max_body = max_body
        self.max_concurrency = max_concurrency
        self.auth = ApiAuth(auth_token, settings.routes)
        self.openai_compat = openai_compat
        self.model_name = model_name  # the workflow as an OpenAI "model"
        self.keepalive = KEEPALIVE_SECONDS  # SSE comment sent after this long without an event
        self.started = int(time.time())
        # the OpenAI endpoint runs the workflow as if its first POST route had been called
        self.openai_route = next((r.path for r in settings.routes if "POST" in r.methods), None)
        self.in_flight = 0
        # Built-in probes for orchestrators, unless the workflow routes those paths itself.
        self.probes = frozenset(p for p in PROBE_PATHS if not self.router.path_methods(p))
        self.draining = False  # set on SIGTERM (see server.runner.drain): /ready answers 503
        self.ui = ui  # server.playground.Playground when the playground is on

    # -- ASGI entry -------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        started = time.perf_counter()
        headers = _headers(scope)
        incoming_id = headers.get("x-request-id", "")
        request_id = incoming_id if _ID_OK.match(incoming_id) else uuid.uuid4().hex
        peer = scope["client"][0] if scope.get("client") else ""
        ip = client_ip(peer, headers.get("x-forwarded-for"), self.trusted)
        method = scope["method"]
        common = {} if self.cors.is_preflight(method, headers) else self.cors.response_headers(headers)
        common["x-request-id"] = request_id
        sender = ResponseSender(with_api_headers(send), common, head=method == "HEAD")
        span = observability.start_request(method, scope["path"])  # None unless tracing is on

        try:
            reply = await self._handle(scope, receive, headers, request_id, ip, sender)
        except HTTPError as exc:
            reply = _Reply.error(exc.status, exc.message, exc.headers)
        except ClientDisconnect:
            reply = _Reply(499, b"")  # gone before its request was complete: nothing to answer
            reply.sent = sender.left = True
        except Exception:
            error_log.exception("request %s failed unexpectedly", request_id)
            reply = _Reply.error(500, "internal server error", requestId=request_id)

        if sender.started:
            await sender.finish()  # a streamed reply: whatever happened, end the body cleanly
            reply.status = sender.status
        elif not reply.sent:
            await sender.whole(reply.status, reply.headers, reply.body)
        if sender.left:
            reply.status = 499  # as proxies log it: the client closed the connection first
        self._log(request_id, method, scope["path"], reply, ip, started, sender.size)
        metrics.request_done(method, reply.route, reply.status, time.perf_counter() - started)
        observability.end_request(span, reply.status, reply.route)

    def _log(self, request_id: str, method: str, path: str, reply: _Reply, ip: str, started: float,
             size: int) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        now = time.time()
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
            "requestId": request_id, "method": method, "path": path, "route": reply.route,
            "status": reply.status, "durationMs": round((time.perf_counter() - started) * 1000, 2),
            "clientIp": ip, "bytes": size,
        }
        if reply.resources is not None:
            entry["resources"] = reply.resources
        if reply.status >= 400 and reply.body:
            entry["error"] = _error_of(reply.body)  # the failing resource and its message
        access_log.info(json.dumps(entry, default=str, separators=(",", ":")), extra={"entry": entry})

    def _probe(self, path: str) -> _Reply:
        """/health: the process answers. /ready: it takes new work (503 once draining). No auth: the
        kubelet sends no token."""
        if path == "/ready" and self.draining:
            return _Reply.error(503, "server is shutting down", {"retry-after": "1"})
        if path == metrics.PATH:
            if not metrics.available():
                return _Reply.error(404, "metrics need prometheus-client: pip install prometheus-client")
            body, ctype = metrics.exposition()
            return _Reply(200, body, {"content-type": ctype})
        return _Reply(200, b'{"status":"ok"}', {"content-type": "application/json"})

    # -- one request ------------------------------------------------------------------------------
    async def _handle(self, scope: Scope, receive: Receive, headers: dict[str, str], request_id: str,
                      ip: str, sender: ResponseSender) -> _Reply:
        method, path = scope["method"], scope["path"]
        if path in self.probes and method in ("GET", "HEAD"):
            return self._probe(path)
        if self.ui is not None and (page := self.ui.answer(method, path, headers, ip)) is not None:
            return _Reply(*page)
        openai_route = self.openai_compat and openai_compat.handles(path)
        if self.cors.is_preflight(method, headers):
            methods = openai_compat.methods(path) if openai_route else self.router.path_methods(path)
            if not methods:
                return _Reply.error(404, f"no route for {path}")
            status, cors_headers, reason = self.cors.preflight(headers, methods)
            if reason:
                return _Reply.error(status, f"CORS preflight refused: {reason}")
            return _Reply(status, b"", cors_headers)

        if openai_route:
            reply = _Reply(499, b"")
            reply.sent = True  # the handler sends its own response
            reply.route, reply.resources = await openai_compat.handle(self, scope, receive, headers,
                                                                      request_id, ip, sender)
            return reply

        if not self.auth.allows(path, headers):
            return _Reply.error(401, UNAUTHORIZED, {"www-authenticate": "Bearer"})

        match = self.router.match(path, method)
        if match is None:
            return _Reply.error(404, f"no route for {path}")
        if match.route is None:
            allow = ", ".join(sorted(match.allowed))
            return _Reply.error(405, f"method {method} is not allowed on {path}", {"allow": allow},
                                allowed=sorted(match.allowed))
        route = match.route

        self.check_length(headers)
        request = Request(scope, _limited(receive, self.max_body))
        ctype = headers.get("content-type", "")
        files: list[UploadedFile] = []
        upload_dir = None
        admitted = False
        try:
            if ctype.lower().startswith("multipart/form-data"):
                body, files, upload_dir = await read_multipart(request, self.max_body)
            else:
                body = parse_body(await request.body(), ctype)
            # the request is complete only now: a client that stalls its body never holds a slot
            self.admit()
            admitted = True
            data = RequestData(
                method="GET" if method == "HEAD" else method, path=path, route=route.path,
                query=query_dict(scope.get("query_string", b"")),
                body=body, headers=headers, path_params=match.params, files=files, client_ip=ip,
                request_id=request_id,
            )
            session_id, is_new = await self._load_session(data, headers)
            if method != "HEAD" and wants_event_stream(headers):
                reply = await self._stream_engine(data, request_id, session_id, is_new, scope, receive,
                                                  sender)
            else:
                reply = await self._finish_session(await self._run_engine(data, request_id), data, session_id,
                                                   is_new, scope)
            reply.route = route.path
            return reply
        finally:
            if admitted:
                self.in_flight -= 1
            if upload_dir:
                shutil.rmtree(upload_dir, ignore_errors=True)

    def admit(self) -> None:
        """Take a concurrency slot (the caller gives it back with `in_flight -= 1`), or refuse with 503."""
        if self.in_flight >= self.max_concurrency:
            raise HTTPError(503, "server is at its concurrent request limit; retry shortly",
                            {"retry-after": "1"})
        self.in_flight += 1

    def check_length(self, headers: dict[str, str]) -> None:
        """Refuse a declared Content-Length that is malformed or over the body limit."""
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise HTTPError(400, "invalid Content-Length header")
            if int(length) > self.max_body:
                raise BodyTooLarge(self.max_body)

    async def read_body(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> bytes:
        """The whole request body, within the body limit."""
        self.check_length(headers)
        return await Request(scope, _limited(receive, self.max_body)).body()

    def authorised(self, headers: dict[str, str]) -> bool:
        """True when no token is configured or the request carries it."""
        return not self.auth.enabled or self.auth.valid(self.auth.presented(headers))

    async def _load_session(self, data: RequestData, headers: dict[str, str]) -> tuple[str, bool]:
        session_id = _cookie(headers.get("cookie", ""), SESSION_COOKIE) or headers.get(SESSION_HEADER, "")
        stored = None
        if session_id and _ID_OK.match(session_id):
            try:
                stored = await self.store.load(session_id)
            except Exception:
                error_log.exception("session store failed to load a session")
                raise HTTPError(503, "session store is unavailable", {"retry-after": "1"}) from None
        # an unknown or expired id is replaced, so clients cannot choose their own session id
        is_new = stored is None
        if is_new:
            session_id = secrets.token_urlsafe(24)
        data.session_id, data.session = session_id, stored or {}
        return session_id, is_new

    async def run_engine(self, data: RequestData, request_id: str) -> ResponseData:
        """`engine.handle` with any escaping error turned into an error response."""
        try:
            response: ResponseData = await self.engine.handle(data)
        except Exception as exc:
            return failure(exc, request_id)
        return response

    async def _run_engine(self, data: RequestData, request_id: str) -> _Reply:
        response = await self.run_engine(data, request_id)
        reply = _encode(response)
        reply.resources = getattr(response, "resources", None)
        reply.session_changed = bool(response.session_changed)
        if self.ui is not None and self.ui.wants_trace(data.headers, data.client_ip):
            reply.headers.update(self.ui.trace_header(response))
        return reply

    async def save_session(self, session_id: str, data: RequestData) -> HTTPError | None:
        """Persist the request's session; the error to answer with when that fails (store failures logged)."""
        try:
            await self.store.save(session_id, data.session, self.settings.session.ttl)
        except SessionTooLarge as exc:
            return HTTPError(413, str(exc))
        except Exception:
            error_log.exception("session store failed to save a session")
            return HTTPError(503, "session store is unavailable", {"retry-after": "1"})
        return None

    def session_headers(self, session_id: str, scope: Scope, *, cookie: bool) -> dict[str, str]:
        """`X-Session-Id`, plus the session cookie when `cookie`."""
        out = {"x-session-id": session_id}
        if cookie:
            secure = "; Secure" if self.came_over_tls(scope) else ""
            max_age = int(self.settings.session.ttl)
            out["set-cookie"] = (f"{SESSION_COOKIE}={session_id}; Path=/; Max-Age={max_age}; "
                                 f"HttpOnly; SameSite=Lax{secure}")
        return out

    def came_over_tls(self, scope: Scope) -> bool:
        """True when the request reached us over TLS, or a trusted proxy says (X-Forwarded-Proto, its
        own, last value) that it reached the proxy over TLS."""
        if scope.get("scheme") == "https":
            return True
        peer = scope["client"][0] if scope.get("client") else ""
        if not self.trusted or not is_trusted(peer, self.trusted):
            return False
        proto = [v for k, v in scope["headers"] if k.lower() == b"x-forwarded-proto"]
        return bool(proto) and proto[-1].split(b",")[-1].strip().lower() == b"https"

    async def _finish_session(self, reply: _Reply, data: RequestData, session_id: str, is_new: bool,
                              scope: Scope) -> _Reply:
        changed = reply.session_changed
        failed = await self.save_session(session_id, data) if changed else None
        if failed is not None:
            return _Reply.error(failed.status, failed.message, failed.headers)
        if changed or not is_new:
            reply.headers.update(self.session_headers(session_id, scope, cookie=changed))
        return reply

    # -- Server-Sent Events ------------------------------------------------------------------------
    async def _stream_engine(self, data: RequestData, request_id: str, session_id: str, is_new: bool,
                             scope: Scope, receive: Receive, sender: ResponseSender) -> _Reply:
        """Run the workflow streaming its chat deltas as SSE (`event: delta`), ending with
        `event: result` (the body the plain request would get) or `event: error`.

        Nothing is sent until the first delta or a due keep-alive, so a run that fails before that
        (e.g. a preflight 400) answers as usual: its own status and a JSON body. After that the status
        is 200 and the outcome is in the last event; an error event's body gains a `status` field."""
        async with EngineRun(self.engine, data, receive, request_id) as run:
            async for event in run.events(self.keepalive):
                if not sender.started:
                    # headers leave before we know whether the session will change: name it anyway
                    session = self.session_headers(session_id, scope, cookie=True)
                    await sender.start(200, {**SSE_HEADERS, **session})
                if event is None:
                    await sender.write(KEEPALIVE)
                else:
                    await sender.write(sse({"resource": event.get("resource"),
                                            "text": event.get("text", "")}, "delta"))
        response = run.response
        if response is None:  # the client went away; the run was cancelled
            sender.left = True
            reply = _Reply(499, b"")
            reply.sent = True
            return reply
        reply = _encode(response)
        reply.resources = response.resources
        reply.session_changed = bool(response.session_changed)
        if self.ui is not None and self.ui.wants_trace(data.headers, data.client_ip):
            if sender.started:
                await sender.write(sse(self.ui.trace(response), "trace"))
            else:
                reply.headers.update(self.ui.trace_header(response))
        if not sender.started:
            reply = await self._finish_session(reply, data, session_id, is_new, scope)
            if reply.status >= 400:  # answered as plain JSON, with its own status
                return reply
            await sender.start(reply.status, {**reply.headers, **SSE_HEADERS})
            await sender.write(sse(response.body, "result"))
            return reply
        status, body = reply.status, response.body
        failed = await self.save_session(session_id, data) if reply.session_changed else None
        if failed is not None:
            status, body = failed.status, error_body(failed.message)
        if status >= 400:
            if isinstance(body, dict) and "status" not in body:
                body = {**body, "status": status}
            await sender.write(sse(body, "error"))
        else:
            await sender.write(sse(body, "result"))
        return reply


def _encode(response: ResponseData) -> _Reply:
    headers: dict[str, str] = {}
    for key, value in (response.headers or {}).items():
        name, text = str(key).strip().lower(), str(value)
        if name in _SKIP_HEADERS or any(c in name + text for c in "\r\n\0") or not name:
            continue  # never let a template smuggle extra headers or break framing
        headers[name] = text
    ctype = headers.get("content-type", "application/json")
    if isinstance(response.body, str | bytes) and "json" not in ctype:
        body = response.body.encode("utf-8") if isinstance(response.body, str) else response.body
    else:
        body = _json_bytes(response.body)
        ctype = "application/json" if "json" not in ctype else ctype
    headers["content-type"] = ctype
    status = response.status if isinstance(response.status, int) and 100 <= response.status <= 599 else 500
    return _Reply(status, body, headers)


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_key, raw_value in scope["headers"]:
        key, value = raw_key.decode("latin-1").lower(), raw_value.decode("latin-1")
        if key in out:
            value = f"{out[key]}{'; ' if key == 'cookie' else ', '}{value}"
        out[key] = value
    return out


def _cookie(header: str, name: str) -> str | None:
    if not header or name not in header:
        return None
    jar: SimpleCookie = SimpleCookie()
    with contextlib.suppress(Exception):
        jar.load(header)
    morsel = jar.get(name)
    return morsel.value if morsel else None


def _limited(receive: Receive, limit: int) -> Receive:
    """Wrap `receive` so a body longer than `limit` stops being read as soon as it passes the cap
    (Content-Length can be absent or lie with chunked uploads)."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return wrapped


def create_app(project: Project, engine: Engine, *, max_body: int | None = None,
               max_concurrency: int | None = None,
               auth_token: str | None = None, openai_compat: bool = False,
               session_store: SessionStore | None = None, base_dir: str | Path | None = None,
               settings: ServerSettings | None = None, ui: bool = False) -> Any:
    """The ASGI app serving `project` through `engine`. Limits and the bearer token default to the
    workflow's apiServer settings; the session store defaults to the workflow's session block (a
    relative sqlite path resolves under `base_dir`, the workflow folder)."""
    settings = settings or settings_from_project(project)
    if auth_token is None:
        agent_env = _agent_env(project)
        auth_token = resolve_token(settings.auth_token, agent_env)
    if base_dir is None:
        base_dir = _project_dir(project)
    store = session_store or create_store(settings.session.type, path=settings.session.path,
                                          url=settings.session.url, base_dir=base_dir)
    core = KdepsASGI(engine, settings, store,
                     max_body=max_body if max_body is not None else settings.max_body_size,
                     max_concurrency=max_concurrency if max_concurrency is not None
                     else settings.max_concurrent_requests,
                     auth_token=auth_token, openai_compat=openai_compat, model_name=_model_name(project))
    if ui or settings.ui:
        from kdeps.server.playground import Playground

        routed = frozenset(p for p in ("/", "/docs", "/openapi.json") if core.router.path_methods(p))
        core.ui = Playground(project, settings, token=auth_token, openai=openai_compat, routed=routed,
                             session_cookie=SESSION_COOKIE)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await store.open()
        start = getattr(engine, "startup", None)
        if start is not None:
            await start()
        cleaner = asyncio.create_task(_clean_periodically(store, settings.session.cleanup_interval))
        try:
            yield
        finally:
            cleaner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cleaner
            stop = getattr(engine, "aclose", None) or getattr(engine, "shutdown", None)
            if stop is not None:
                with contextlib.suppress(Exception):
                    await stop()
            await _close_llm_transport()
            await store.close()

    app = Starlette(routes=[Mount("/", app=core)], lifespan=lifespan)
    app.state.kdeps = core
    return _Direct(app, core)


class _Direct:
    """HTTP goes straight to the core (it answers every error itself), skipping Starlette's router
    and middleware on the hot path; Starlette keeps the lifespan and anything that is not HTTP."""

    def __init__(self, app: Starlette, core: KdepsASGI) -> None:
        self.app, self.core, self.state = app, core, app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self.core(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _close_llm_transport() -> None:
    """Close the process-wide outbound HTTP session, if the LLM layer opened one."""
    from kdeps.llm.transport import aclose

    with contextlib.suppress(Exception):
        await aclose()


async def _clean_periodically(store: SessionStore, interval: float) -> None:
    while True:
        await asyncio.sleep(max(interval, 0.05))
        try:
            await store.cleanup()
        except Exception:
            error_log.exception("session cleanup failed")


def _error_of(body: bytes) -> dict[str, Any] | None:
    """`{"resource", "message"}` of an error body, for the access log."""
    try:
        error = json.loads(body).get("error") if len(body) < 65536 else None
    except (ValueError, AttributeError):
        return None
    if isinstance(error, str):
        return {"message": error}
    if not isinstance(error, dict):
        return None
    return {"resource": error.get("resource") or error.get("resourceId"), "message": error.get("message")}


def _model_name(project: Project) -> str:
    return str(project.workflow.metadata.name) or "kdeps"


def _project_dir(project: Project) -> Path:
    return Path(project.root)


def _agent_env(project: Project) -> dict[str, str]:
    return {str(k): str(v) for k, v in project.workflow.settings.agent_settings.env.items()}
