"""One request's life once it has been read, the same for every route and for `/v1/chat/completions`:
session in, the engine (whole or streamed), session out, session headers, the answer sent.

What differs between endpoints is only how the engine's answer is written; an `Answer` says that
(`server/app.py` has KDeps' own, `server/openai_compat.py` OpenAI's).

A streamed answer holds its status line back until there is something to send (the first delta, or a
keep-alive that is due): a run that fails before that still answers with its real status and a JSON
body. Once committed, the status is the answer's own and a late failure travels in the last event."""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from http.cookies import SimpleCookie
from typing import Any, Protocol

from starlette.types import Receive, Scope

from kdeps.engine.request import RequestData, ResponseData
from kdeps.engine.runner import failure
from kdeps.errors import HTTPError
from kdeps.server.incoming import Network, is_trusted
from kdeps.server.streaming import KEEPALIVE, KEEPALIVE_SECONDS, SSE_HEADERS, EngineRun, ResponseSender
from kdeps.session import SessionStore, SessionTooLarge

SESSION_COOKIE = "kdeps_session"
SESSION_HEADER = "x-session-id"
ID_OK = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")

log = logging.getLogger("kdeps.server")


class Answer(Protocol):
    """How one endpoint writes the engine's answer."""

    def head(self, response: ResponseData) -> tuple[int, dict[str, str]]:
        """Status and headers of a stream that opens only once the run is over."""
        ...

    def whole(self, response: ResponseData) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of the answer sent in one piece."""
        ...

    def opening(self) -> bytes:
        """What a stream starts with, right after its headers."""
        ...

    def delta(self, event: dict[str, Any]) -> bytes:
        """One chat delta as stream bytes (b"" to send nothing)."""
        ...

    def closing(self, response: ResponseData) -> bytes:
        """The last events of a stream: the outcome (success or failure)."""
        ...


class Sessions:
    """The session store seen from HTTP: which session a request names, saving it, its headers."""

    def __init__(self, store: SessionStore, ttl: float, trusted: list[Network]) -> None:
        self.store, self.ttl, self.trusted = store, ttl, trusted

    async def load(self, data: RequestData) -> bool:
        """Fill `data.session_id`/`data.session`; True when the session is new. An unknown or expired
        id is replaced, so clients cannot choose their own session id."""
        headers = data.headers
        session_id = _cookie(headers.get("cookie", ""), SESSION_COOKIE) or headers.get(SESSION_HEADER, "")
        stored = None
        if session_id and ID_OK.match(session_id):
            try:
                stored = await self.store.load(session_id)
            except Exception:
                log.exception("session store failed to load a session")
                raise HTTPError(503, "session store is unavailable", {"retry-after": "1"}) from None
        if stored is None:
            session_id = secrets.token_urlsafe(24)
        data.session_id, data.session = session_id, stored or {}
        return stored is None

    async def save(self, data: RequestData) -> HTTPError | None:
        """Persist the request's session; the error to answer with when that fails (store failures logged)."""
        try:
            await self.store.save(data.session_id or "", data.session, self.ttl)
        except SessionTooLarge as exc:
            return HTTPError(413, str(exc))
        except Exception:
            log.exception("session store failed to save a session")
            return HTTPError(503, "session store is unavailable", {"retry-after": "1"})
        return None

    def headers(self, session_id: str, scope: Scope, *, cookie: bool) -> dict[str, str]:
        """`X-Session-Id`, plus the session cookie when `cookie`."""
        out = {SESSION_HEADER: session_id}
        if cookie:
            secure = "; Secure" if self.over_tls(scope) else ""
            out["set-cookie"] = (f"{SESSION_COOKIE}={session_id}; Path=/; Max-Age={int(self.ttl)}; "
                                 f"HttpOnly; SameSite=Lax{secure}")
        return out

    def over_tls(self, scope: Scope) -> bool:
        """True when the request reached us over TLS, or a trusted proxy says (X-Forwarded-Proto, its
        own, last value) that it reached the proxy over TLS."""
        if scope.get("scheme") == "https":
            return True
        peer = scope["client"][0] if scope.get("client") else ""
        if not self.trusted or not is_trusted(peer, self.trusted):
            return False
        proto = [v for k, v in scope["headers"] if k.lower() == b"x-forwarded-proto"]
        return bool(proto) and proto[-1].split(b",")[-1].strip().lower() == b"https"


class Lifecycle:
    """Runs requests through the engine and answers them; one per server, no per-request state."""

    def __init__(self, engine: Any, sessions: Sessions, keepalive: float = KEEPALIVE_SECONDS) -> None:
        self.engine, self.sessions, self.keepalive = engine, sessions, keepalive

    async def serve(self, data: RequestData, scope: Scope, receive: Receive, sender: ResponseSender,
                    answer: Answer, *, stream: bool) -> ResponseData | None:
        """Answer `data` through `sender`; the engine's response (None when the client left mid-stream)."""
        is_new = await self.sessions.load(data)
        if not stream:
            response: ResponseData = await self.engine.handle(data)
            session = await self._session_out(response, data, scope, is_new)
            status, headers, body = answer.whole(response)
            await sender.whole(status, {**headers, **session}, body)
            return response

        async with EngineRun(self.engine, data, receive) as run:
            async for event in run.events(self.keepalive):
                if not sender.started:
                    # headers leave before we know whether the session will change: name it anyway
                    session = self.sessions.headers(data.session_id or "", scope, cookie=True)
                    await sender.start(200, {**SSE_HEADERS, **session})
                    await sender.write(answer.opening())
                chunk = KEEPALIVE if event is None else answer.delta(event)
                if chunk:
                    await sender.write(chunk)
        if run.response is None:  # the client went away; the run was cancelled
            sender.left = True
            return None
        response = run.response
        session = await self._session_out(response, data, scope, is_new)
        if not sender.started:
            if response.status >= 400:  # nothing was sent yet: a plain answer with its own status
                status, headers, body = answer.whole(response)
                await sender.whole(status, {**headers, **session}, body)
                return response
            status, headers = answer.head(response)
            await sender.start(status, {**headers, **session, **SSE_HEADERS})
            await sender.write(answer.opening())
        await sender.write(answer.closing(response))
        return response

    async def _session_out(self, response: ResponseData, data: RequestData, scope: Scope,
                           is_new: bool) -> dict[str, str]:
        """Save a changed session; the session headers to answer with. When saving fails, `response`
        becomes that failure (413 or 503)."""
        changed = response.session_changed
        failed = await self.sessions.save(data) if changed else None
        if failed is not None:
            refused = failure(failed, data)
            response.status, response.body = refused.status, refused.body
            return failed.headers
        if changed or not is_new:
            return self.sessions.headers(data.session_id or "", scope, cookie=changed)
        return {}


def _cookie(header: str, name: str) -> str | None:
    if not header or name not in header:
        return None
    jar: SimpleCookie = SimpleCookie()
    with contextlib.suppress(Exception):
        jar.load(header)
    morsel = jar.get(name)
    return morsel.value if morsel else None
