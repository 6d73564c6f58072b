"""HTTP response and Server-Sent Events plumbing: the sender every answer goes through, SSE framing, and
a streamed engine run (`engine.handle(request, emit=...)` in its own task, its chat deltas arriving
through a queue). `server/lifecycle.py` decides what is sent when."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import Receive, Send

from kdeps import fastjson
from kdeps.engine.request import RequestData, ResponseData
from kdeps.engine.runner import failure

KEEPALIVE_SECONDS = 15.0
KEEPALIVE = b": keep-alive\n\n"
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
               "x-accel-buffering": "no"}


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON of an answer (see `kdeps.fastjson.dumps`)."""
    return fastjson.dumps(value, default=str)


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE event. `data` is JSON-encoded unless it is already text; JSON has no raw newlines, so it
    always fits on one `data:` line."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    text = data if isinstance(data, str) else fastjson.dumps(data, default=str).decode("utf-8")
    head = f"event: {event}\n" if event else ""
    return (head + "".join(f"data: {line}\n" for line in text.split("\n")) + "\n").encode("utf-8")


def wants_event_stream(headers: dict[str, str]) -> bool:
    """True when the client's Accept header names text/event-stream."""
    return "text/event-stream" in headers.get("accept", "").lower()


class ResponseSender:
    """Sends one HTTP response through ASGI `send`, adding headers every response carries (request id,
    CORS; `defaults` such as the API security headers unless the response sets them itself) and
    remembering what went out, for the access log."""

    def __init__(self, send: Send, common: dict[str, str], *, head: bool = False,
                 defaults: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        self._send, self.common, self.head, self.defaults = send, common, head, defaults
        self.started = self.finished = False
        self.left = False  # the client went away before the response was complete
        self.status = 0
        self.size = 0

    def _raw(self, headers: dict[str, str], length: int | None = None) -> list[tuple[bytes, bytes]]:
        merged = {**headers, **self.common}
        raw = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in merged.items()]
        if length is not None:
            raw.append((b"content-length", str(length).encode()))
        if self.defaults:
            present = {k.lower() for k, _ in raw}
            raw.extend(pair for pair in self.defaults if pair[0] not in present)
        return raw

    async def whole(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """A complete response with Content-Length."""
        raw = self._raw(headers, len(body))
        self.started, self.status = True, status
        await self._send({"type": "http.response.start", "status": status, "headers": raw})
        await self._send({"type": "http.response.body", "body": b"" if self.head else body})
        self.finished, self.size = True, len(body)

    async def start(self, status: int, headers: dict[str, str]) -> None:
        """Begin a streamed (chunked) response."""
        self.started, self.status = True, status
        await self._send({"type": "http.response.start", "status": status, "headers": self._raw(headers)})

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        await self._send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def finish(self) -> None:
        if self.started and not self.finished:
            self.finished = True
            await self._send({"type": "http.response.body", "body": b""})


class EngineRun:
    """`engine.handle(data, emit=...)` running in a task. `events()` yields its delta events as they come
    (None when a keep-alive is due); afterwards `response` holds the outcome, or stays None when the
    client went away, which cancels the run. Use as `async with EngineRun(...) as run:` so the run
    never outlives the request, whatever happens while sending."""

    def __init__(self, engine: Any, data: RequestData, receive: Receive) -> None:
        self.data = data
        self.response: ResponseData | None = None
        self.disconnected = False
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._task = asyncio.create_task(engine.handle(data, emit=self._emit))
        self._task.add_done_callback(lambda _t: self._queue.put_nowait(None))
        self._watch = asyncio.create_task(self._watch_disconnect(receive))

    async def __aenter__(self) -> EngineRun:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _emit(self, event: dict[str, Any]) -> None:
        await self._queue.put(event)

    async def _watch_disconnect(self, receive: Receive) -> None:
        # The body has been read already, so the next message can only be the disconnect.
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                self.disconnected = True
                self._task.cancel()
                return

    async def events(self, keepalive: float = KEEPALIVE_SECONDS) -> AsyncIterator[dict[str, Any] | None]:
        while True:
            try:
                event = await asyncio.wait_for(self._queue.get(), keepalive)
            except TimeoutError:
                yield None
                continue
            if event is None:
                break
            if event.get("type", "delta") == "delta":
                yield event
        self._settle()

    def _settle(self) -> None:
        try:
            self.response = self._task.result()
        except asyncio.CancelledError:
            self.disconnected = True
        except Exception as exc:
            self.response = failure(exc, self.data)

    async def aclose(self) -> None:
        """Stop the run (if still going) and the disconnect watcher."""
        for task in (self._task, self._watch):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
