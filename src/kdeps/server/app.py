"""The ASGI application: limits, auth, CORS, routing, request parsing, sessions, then the engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.routing import Mount
from starlette.types import Message, Receive, Scope, Send

from kdeps import envelope, logs, observability
from kdeps.engine.request import RequestData, ResponseData, UploadedFile
from kdeps.errors import HTTPError
from kdeps.server import metrics, openai_compat
from kdeps.server.auth import API_HEADERS, UNAUTHORIZED, ApiAuth, resolve_token
from kdeps.server.config import ServerSettings, settings_from_project
from kdeps.server.cors import Cors
from kdeps.server.incoming import (
    BodyTooLarge,
    client_ip,
    parse_body,
    parse_networks,
    query_dict,
    read_multipart,
)
from kdeps.server.lifecycle import ID_OK, SESSION_COOKIE, Lifecycle, Sessions
from kdeps.server.routing import Router
from kdeps.server.streaming import ResponseSender, json_bytes, sse, wants_event_stream
from kdeps.session import SessionStore, create_store

if TYPE_CHECKING:
    from kdeps.engine.runner import Engine
    from kdeps.spec.loader import Project

PROBE_PATHS = ("/health", "/ready", metrics.PATH)
_SKIP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})

access_log = logging.getLogger("kdeps.access")
error_log = logging.getLogger("kdeps.server")

__all__ = ["KdepsASGI", "create_app"]


class _Reply:
    """An answer the server makes itself (probes, pages, refusals), or (`sent`) the record of one that
    went out through the lifecycle; what the access log reads."""

    __slots__ = ("body", "error", "headers", "resources", "route", "sent", "status")

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}
        self.route: str | None = None
        self.resources: list[str] | None = None
        self.error: dict[str, Any] | None = None  # the `error` object of a failure, for the log
        self.sent = False

    @classmethod
    def refusal(cls, exc: HTTPError, meta: dict[str, Any]) -> _Reply:
        body = exc.envelope(meta)
        reply = cls(exc.status, json_bytes(body), {**exc.headers, "content-type": "application/json"})
        reply.error = body["error"]
        return reply

    @classmethod
    def answered(cls, response: ResponseData | None, route: str | None) -> _Reply:
        """The record of an answer the lifecycle sent (None: the client left first)."""
        reply = cls(499)
        reply.sent, reply.route = True, route
        if response is not None:
            reply.status, reply.resources = response.status, response.resources
            error = response.body.get("error") if isinstance(response.body, dict) else None
            reply.error = error if isinstance(error, dict) else None
        return reply


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
        self.lifecycle = Lifecycle(engine, Sessions(store, settings.session.ttl, self.trusted))
        self.max_body = max_body
        self.max_concurrency = max_concurrency
        self.auth = ApiAuth(auth_token, settings.routes)
        self.openai_compat = openai_compat
        self.model_name = model_name  # the workflow as an OpenAI "model"
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
        request_id = incoming_id if ID_OK.match(incoming_id) else _request_id()
        peer = scope["client"][0] if scope.get("client") else ""
        ip = client_ip(peer, headers.get("x-forwarded-for"), self.trusted)
        method, path = scope["method"], scope["path"]
        common = {} if self.cors.is_preflight(method, headers) else self.cors.response_headers(headers)
        common["x-request-id"] = request_id
        sender = ResponseSender(send, common, head=method == "HEAD", defaults=API_HEADERS)
        span = observability.start_request(method, path)  # None unless tracing is on

        try:
            reply = await self._handle(scope, receive, headers, request_id, ip, sender)
        except HTTPError as exc:
            reply = _Reply.refusal(exc, envelope.request_meta(request_id, path, method))
        except ClientDisconnect:
            reply = _Reply(499)  # gone before its request was complete: nothing to answer
            reply.sent = sender.left = True
        except Exception:
            error_log.exception("request %s failed unexpectedly", request_id)
            reply = _Reply.refusal(HTTPError(500, "internal server error"),
                                   envelope.request_meta(request_id, path, method))

        if sender.started:
            await sender.finish()  # a streamed reply: whatever happened, end the body cleanly
            reply.status = sender.status
        elif not reply.sent:
            await sender.whole(reply.status, reply.headers, reply.body)
        if sender.left:
            reply.status = 499  # as proxies log it: the client closed the connection first
        self._log(request_id, method, path, reply, ip, started, sender.size)
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
        if reply.status >= 400 and reply.error is not None:
            entry["error"] = {"resource": reply.error.get("resource") or reply.error.get("resourceId"),
                              "message": reply.error.get("message")}
        logs.access(entry)

    def _probe(self, path: str) -> _Reply:
        """/health: the process answers. /ready: it takes new work (503 once draining). No auth: the
        kubelet sends no token."""
        if path == "/ready" and self.draining:
            raise HTTPError(503, "server is shutting down", {"retry-after": "1"})
        if path == metrics.PATH:
            if not metrics.available():
                raise HTTPError(404, "metrics need prometheus-client: pip install prometheus-client")
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
                raise HTTPError(404, f"no route for {path}")
            status, cors_headers, reason = self.cors.preflight(headers, methods)
            if reason:
                raise HTTPError(status, f"CORS preflight refused: {reason}")
            return _Reply(status, b"", cors_headers)

        if openai_route:
            label, answered = await openai_compat.handle(self, scope, receive, headers, request_id, ip,
                                                         sender)
            return _Reply.answered(answered, label)

        if not self.auth.allows(path, headers):
            raise HTTPError(401, UNAUTHORIZED, {"www-authenticate": "Bearer"})

        match = self.router.match(path, method)
        if match is None:
            raise HTTPError(404, f"no route for {path}")
        if match.route is None:
            allow = ", ".join(sorted(match.allowed))
            raise HTTPError(405, f"method {method} is not allowed on {path}", {"allow": allow},
                            allowed=sorted(match.allowed))
        route = match.route

        self.check_length(headers)
        ctype = headers.get("content-type", "")
        files: list[UploadedFile] = []
        upload_dir = None
        try:
            if ctype.lower().startswith("multipart/form-data"):
                request = Request(scope, _limited(receive, self.max_body))
                body, files, upload_dir = await read_multipart(request, self.max_body)
            else:
                body = parse_body(await _read(receive, self.max_body), ctype)
            data = RequestData(
                method="GET" if method == "HEAD" else method, path=path, route=route.path,
                query=query_dict(scope.get("query_string", b"")),
                body=body, headers=headers, path_params=match.params, files=files, client_ip=ip,
                request_id=request_id,
            )
            traced = self.ui is not None and self.ui.wants_trace(headers, ip)
            answer = _KdepsAnswer(self.ui if traced else None)
            # the request is complete only now: a client that stalls its body never holds a slot
            with self.slot():
                response = await self.lifecycle.serve(data, scope, receive, sender, answer,
                                                      stream=method != "HEAD" and wants_event_stream(headers))
            return _Reply.answered(response, route.path)
        finally:
            if upload_dir:
                shutil.rmtree(upload_dir, ignore_errors=True)

    def slot(self) -> _Slot:
        """`with core.slot():` holds a concurrency slot while the body runs, or refuses with 503 when
        none is free."""
        if self.in_flight >= self.max_concurrency:
            raise HTTPError(503, "server is at its concurrent request limit; retry shortly",
                            {"retry-after": "1"})
        return _Slot(self)

    def check_length(self, headers: dict[str, str]) -> None:
        """Refuse a declared Content-Length that is malformed or over the body limit."""
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise HTTPError(400, "invalid Content-Length header")
            if int(length) > self.max_body:
                raise BodyTooLarge(self.max_body)

    async def read_body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        """The whole request body, within the body limit."""
        self.check_length(headers)
        return await _read(receive, self.max_body)

    def authorised(self, headers: dict[str, str]) -> bool:
        """True when no token is configured or the request carries it."""
        return not self.auth.enabled or self.auth.valid(self.auth.presented(headers))


class _Slot:
    """A held concurrency slot (see `KdepsASGI.slot`)."""

    __slots__ = ("core",)

    def __init__(self, core: KdepsASGI) -> None:
        self.core = core

    def __enter__(self) -> None:
        self.core.in_flight += 1

    def __exit__(self, *exc: object) -> None:
        self.core.in_flight -= 1


class _KdepsAnswer:
    """KDeps' own answer: the workflow's body as JSON (or text), streamed as `event: delta` events
    ending with `event: result` (the body the plain request would get) or `event: error` (that body
    with a `status` field). With the playground's trace asked for, the trace travels too."""

    def __init__(self, ui: Any) -> None:
        self.ui = ui  # the playground, when this request asked for the trace; else None

    def head(self, response: ResponseData) -> tuple[int, dict[str, str]]:
        return _head(response)

    def whole(self, response: ResponseData) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = _encode(response)
        if self.ui is not None:
            headers.update(self.ui.trace_header(response))
        return status, headers, body

    def opening(self) -> bytes:
        return b""

    def delta(self, event: dict[str, Any]) -> bytes:
        return sse({"resource": event.get("resource"), "text": event.get("text", "")}, "delta")

    def closing(self, response: ResponseData) -> bytes:
        trace = sse(self.ui.trace(response), "trace") if self.ui is not None else b""
        body = response.body
        if response.status < 400:
            return trace + sse(body, "result")
        if isinstance(body, dict) and "status" not in body:
            body = {**body, "status": response.status}
        return trace + sse(body, "error")


def _head(response: ResponseData) -> tuple[int, dict[str, str]]:
    """The workflow's status (500 when it is not one) and headers, without those that would let a
    template smuggle extra headers or break framing."""
    headers: dict[str, str] = {}
    for key, value in (response.headers or {}).items():
        name, text = str(key).strip().lower(), str(value)
        if name in _SKIP_HEADERS or any(c in name + text for c in "\r\n\0") or not name:
            continue
        headers[name] = text
    status = response.status if isinstance(response.status, int) and 100 <= response.status <= 599 else 500
    return status, headers


def _encode(response: ResponseData) -> tuple[int, dict[str, str], bytes]:
    status, headers = _head(response)
    ctype = headers.get("content-type", "application/json")
    if isinstance(response.body, str | bytes) and "json" not in ctype:
        body = response.body.encode("utf-8") if isinstance(response.body, str) else response.body
    else:
        body = json_bytes(response.body)
        ctype = "application/json" if "json" not in ctype else ctype
    headers["content-type"] = ctype
    return status, headers, body


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_key, raw_value in scope["headers"]:
        key, value = raw_key.decode("latin-1").lower(), raw_value.decode("latin-1")
        if key in out:
            value = f"{out[key]}{'; ' if key == 'cookie' else ', '}{value}"
        out[key] = value
    return out


def _request_id() -> str:
    """A random UUID (version 4) as 32 hex digits, as `uuid.uuid4().hex` gives, without its objects."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


async def _read(receive: Receive, limit: int) -> bytes:
    """The whole request body within `limit` (see `_limited`); ClientDisconnect when the client leaves
    first."""
    receive = _limited(receive, limit)
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


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
    store = session_store if session_store is not None else create_store(
        settings.session.type, path=settings.session.path, url=settings.session.url, base_dir=base_dir)
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


def _model_name(project: Project) -> str:
    return str(project.workflow.metadata.name) or "kdeps"


def _project_dir(project: Project) -> Path:
    return Path(project.root)


def _agent_env(project: Project) -> dict[str, str]:
    return {str(k): str(v) for k, v in project.workflow.settings.agent_settings.env.items()}
