"""What a client may make the server hold: head size and header count, how long the head and the body
may take to arrive, and how deeply a JSON body may nest.

Head and body timing are enforced in the HTTP protocol (a uvicorn httptools protocol with guards), so a
connection that stalls before its request is complete never reaches the app, and never takes one of
the app's concurrency slots."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from kdeps import fastjson
from kdeps.errors import HTTPError

MAX_HEAD_BYTES = 64 * 1024  # request line plus headers
MAX_HEADERS = 100
HEAD_TIMEOUT = 10.0  # from connection (or first byte of the next request) to the end of the head
BODY_IDLE_TIMEOUT = 15.0  # longest pause between two pieces of a body
BODY_TIMEOUT = 120.0  # the whole body, however steadily it trickles in
MAX_JSON_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Limits:
    head_bytes: int = MAX_HEAD_BYTES
    headers: int = MAX_HEADERS
    head_timeout: float = HEAD_TIMEOUT
    body_idle_timeout: float = BODY_IDLE_TIMEOUT
    body_timeout: float = BODY_TIMEOUT


class JSONTooDeep(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested more than {limit} levels deep")


def loads_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` that refuses nesting deeper than `max_depth` (JSONTooDeep, a ValueError) instead of
    recursing until Python gives up, or handing the engine data too deep to walk."""
    # depth can only exceed the limit when there are that many brackets at all: skip the walk otherwise
    brackets = (text.count("[") + text.count("{") if isinstance(text, str)
                else text.count(b"[") + text.count(b"{"))
    if brackets <= max_depth:
        return fastjson.loads(text)
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONTooDeep(max_depth) from None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise JSONTooDeep(max_depth)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return value


def _refusal(status: int, reason: str, message: str) -> bytes:
    body = json.dumps(HTTPError(status, message).envelope()).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


try:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


class _HeadTooLarge(Exception):
    pass


class _GuardedParser:
    """The httptools parser, turning a head over the limits into a 431 instead of uvicorn's generic 400."""

    def __init__(self, inner: Any, protocol: Any) -> None:
        self._inner, self._protocol = inner, protocol
        # bound once: uvicorn calls these on every request
        for name in ("get_http_version", "get_method", "should_upgrade", "should_keep_alive"):
            setattr(self, name, getattr(inner, name))

    def feed_data(self, data: bytes) -> None:
        try:
            self._inner.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__cause__ or exc.__context__, _HeadTooLarge):
                self._protocol._too_large()
                return
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Sweeper:
    """One timer per server that looks at every connection a few times per shortest timeout, instead of
    a timer armed and cancelled for every request."""

    def __init__(self, loop: asyncio.AbstractEventLoop, connections: set[Any], interval: float) -> None:
        self.loop, self.connections, self.interval = loop, connections, interval
        self.handle: asyncio.TimerHandle | None = None

    def ensure(self) -> None:
        if self.handle is None:
            self.handle = self.loop.call_later(self.interval, self._sweep)

    def _sweep(self) -> None:
        self.handle = None
        now = self.loop.time()
        for conn in list(self.connections):
            check = getattr(conn, "check_timers", None)
            if check is not None:
                check(now)
        if self.connections:
            self.ensure()


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol with the head limits and the head/body deadlines of `limits`.

        All bookkeeping happens once per read (`data_received`) and once per head, not per header or
        per body chunk; the deadlines are checked by the server's sweeper."""

        limits = Limits()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.parser = _GuardedParser(self.parser, self)  # type: ignore[assignment]  # same interface
            self._read = 0  # size of the read being parsed
            self._head_read = 0  # bytes read while the head now awaited was incomplete
            self._head_since = 0.0  # when the head now awaited began (0: none awaited)
            self._body_since = 0.0  # when the app began to wait for the rest of a body (0: not waiting)
            self._body_last = 0.0
            state = self.server_state
            sweeper = getattr(state, "kdeps_sweeper", None)
            if sweeper is None:
                limits = self.limits
                interval = min(limits.head_timeout, limits.body_idle_timeout) / 4
                sweeper = _Sweeper(self.loop, self.connections, max(0.05, min(interval, 1.0)))
                state.kdeps_sweeper = sweeper  # type: ignore[attr-defined]  # one per server
            self._sweeper = sweeper

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._head_since = self.loop.time()
            self._sweeper.ensure()

        def data_received(self, data: bytes) -> None:
            self._read = len(data)
            super().data_received(data)
            if self.transport.is_closing():
                return
            cycle = self.cycle
            if cycle is None or cycle.scope is not self.scope:  # a head is still incomplete
                self._body_since = 0.0
                if not self._head_since:
                    self._head_since, self._head_read = self.loop.time(), 0
                self._head_read += self._read
                headers = self.headers or ()
                if self._head_read > self.limits.head_bytes or len(headers) > self.limits.headers:
                    self._too_large()
                return
            self._head_since = 0.0
            # the body must keep arriving, even once the app has answered (say, 413) without reading it all
            if cycle.more_body:
                now = self.loop.time()
                if not self._body_since:
                    self._body_since = now
                self._body_last = now
            else:
                self._body_since = 0.0

        def on_headers_complete(self) -> None:
            limits = self.limits
            # the exact size is summed only when this head may be near the limit
            maybe_large = self._head_read + self._read > limits.head_bytes
            if len(self.headers) > limits.headers or (maybe_large and self._head_size() > limits.head_bytes):
                raise _HeadTooLarge
            super().on_headers_complete()

        def _head_size(self) -> int:
            return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

        def _too_large(self) -> None:
            limits = self.limits
            self.refuse(431, "Request Header Fields Too Large", "request head too large (at most "
                        f"{limits.headers} headers and {limits.head_bytes} bytes)")

        def check_timers(self, now: float) -> None:
            """Called by the sweeper: refuse a head or body that is late."""
            limits = self.limits
            if self._head_since and now - self._head_since > limits.head_timeout:
                self.refuse(408, "Request Timeout", "request head not received in time")
            elif self._body_since and (now - self._body_last > limits.body_idle_timeout
                                       or now - self._body_since > limits.body_timeout):
                cycle = self.cycle
                if cycle is None or not cycle.more_body:
                    self._body_since = 0.0
                else:
                    self.refuse(408, "Request Timeout", "request body not received in time")

        def refuse(self, status: int, reason: str, message: str) -> None:
            """Answer `status` (unless a response already started) and close the connection; an app
            still waiting for this request's body sees the client gone."""
            self._head_since = self._body_since = 0.0
            if self.transport.is_closing():
                return
            cycle = self.cycle
            if cycle is None or cycle.response_complete or not cycle.response_started:
                self.transport.write(_refusal(status, reason, message))
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
            self.transport.close()

    def protocol_with(limits: Limits) -> type[GuardedHttpToolsProtocol]:
        """The guarded protocol class with other limits (tests shorten the timers)."""
        return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
