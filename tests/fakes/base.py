"""Shared machinery for the fake provider servers used by the tests.

A fake is a real aiohttp server on 127.0.0.1 (free port) running on its own event loop in its own
thread, so synchronous tests, async tests and subprocesses (``kdeps run``) can all reach it.

Writing a fake: subclass :class:`FakeServer` and override

- ``validate(rec)``  -> a :class:`Reply` to reject the request the way the provider would, or None;
- ``route(rec)``     -> a :class:`Reply` for endpoints that answer by themselves (e.g. ``/api/tags``), or
  None; queued replies without a path only go to requests that ``route`` does not answer;
- ``default(rec)``   -> the reply when nothing is scripted (usually a plain "ok" answer);
- ``error_body(status, message)`` -> the provider's error JSON, used by :meth:`FakeServer.fail`.

Using a fake::

    with OpenAIFake() as fake:            # or a pytest fixture that does the same
        fake.push(json_reply({...}))      # queue replies, consumed in order
        fake.fail(429, "slow down", headers={"Retry-After": "1"})
        ...                               # point the client at fake.url
        assert fake.last.json["model"] == "gpt-4o"

A queued item is either a :class:`Reply` (sent as is) or a callable ``(Recorded) -> Reply`` — provider
fakes use callables so one scripted answer can come back streamed or not, as the request asked.

Reply kinds (module functions): :func:`json_reply`, :func:`text_reply`, :func:`error_reply`,
:func:`stream_reply` (optionally cut mid-way), :func:`drop` (close without answering),
:func:`truncated` (Content-Length promises more than is sent), :func:`slow` (delay any reply) and
:func:`gated` (hold a stream half sent until the test releases it).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Self

from aiohttp import web


@dataclass(slots=True)
class Recorded:
    """One request the fake received. Header names are lower-cased; `json` is None if the body is not JSON."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass(slots=True)
class Reply:
    """What the fake answers. Exactly one body form is used: `chunks` (streamed), else `body`.

    `delay`: seconds to wait before answering. `drop`: close the connection without a response.
    `truncate`: send headers promising the full body but only half of it, then close.
    `cut_after`: for streams, close the connection abruptly after that many chunks.
    `gate`: for streams, (i, event): chunk i and the rest wait until the test sets the event (30 s at most),
    so a test can act while a stream is known to be half sent, without timing it.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    chunks: list[bytes] | None = None
    chunk_delay: float = 0.0
    cut_after: int | None = None
    delay: float = 0.0
    drop: bool = False
    truncate: bool = False
    gate: tuple[int, threading.Event] | None = None


def json_reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body=json.dumps(data).encode(), headers=dict(headers or {}))


def text_reply(text: str | bytes, status: int = 200, content_type: str = "text/plain",
               headers: dict[str, str] | None = None) -> Reply:
    """A raw body, e.g. invalid JSON with an honest Content-Length."""
    body = text.encode() if isinstance(text, str) else text
    return Reply(status=status, body=body, content_type=content_type, headers=dict(headers or {}))


def error_reply(status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
    return json_reply(data, status, headers)


def stream_reply(chunks: Iterable[bytes | str], content_type: str = "text/event-stream",
                 cut_after: int | None = None, chunk_delay: float = 0.0,
                 headers: dict[str, str] | None = None) -> Reply:
    """A chunked streamed body; each item is written (and flushed) separately."""
    raw = [c.encode() if isinstance(c, str) else c for c in chunks]
    return Reply(chunks=raw, content_type=content_type, cut_after=cut_after, chunk_delay=chunk_delay,
                 headers=dict(headers or {}))


def drop() -> Reply:
    """Close the connection without sending anything."""
    return Reply(drop=True)


def truncated(reply: Reply) -> Reply:
    """The same reply, but the connection closes halfway through the promised body."""
    return replace(reply, truncate=True)


def slow(reply: Reply, seconds: float) -> Reply:
    return replace(reply, delay=seconds)


def gated(reply: Reply, before_chunk: int, release: threading.Event) -> Reply:
    """The same stream, holding chunk `before_chunk` and the rest until `release` is set."""
    return replace(reply, gate=(before_chunk, release))


@contextmanager
def released() -> Iterator[threading.Event]:
    """An event for :func:`gated`, set on the way out: a failing test leaves no stream held."""
    event = threading.Event()
    try:
        yield event
    finally:
        event.set()


def sse(data: Any, event: str | None = None) -> str:
    """One Server-Sent Event; `data` is JSON-encoded unless it is already a string."""
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in text.split("\n")) + "\n"


def ndjson(data: Any) -> str:
    return json.dumps(data) + "\n"


class FakeServer:
    """A scriptable HTTP server in a background thread. Use as a context manager (start/stop)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._queue: deque[tuple[str | None, Any]] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- hooks for subclasses -------------------------------------------------------------------------
    def validate(self, rec: Recorded) -> Reply | None:
        """Reject a request the provider would reject; None lets it through."""
        return None

    def route(self, rec: Recorded) -> Reply | None:
        """Answer endpoints that are not scripted by the test; None falls through to the queue."""
        return None

    def default(self, rec: Recorded) -> Reply:
        """The reply when nothing is queued."""
        return json_reply({})

    def error_body(self, status: int, message: str) -> Any:
        """The provider's error JSON for `status`."""
        return {"error": {"message": message}}

    # -- scripting ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def last(self) -> Recorded:
        if not self.requests:
            raise AssertionError("the fake received no request")
        return self.requests[-1]

    def push(self, *replies: Reply | Callable[[Recorded], Reply], path: str | None = None) -> Self:
        """Queue replies, answered in order. With `path`, only a request to that path consumes them."""
        with self._lock:
            self._queue.extend((path, r) for r in replies)
        return self

    def fail(self, status: int, message: str = "error", headers: dict[str, str] | None = None,
             path: str | None = None) -> Self:
        """Queue an error in the provider's own body shape."""
        return self.push(error_reply(status, self.error_body(status, message), headers), path=path)

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    def _take(self, rec: Recorded, path: str | None) -> Reply | None:
        """The first queued item for `path` (None: items queued without a path)."""
        with self._lock:
            for i, (queued_path, item) in enumerate(self._queue):  # noqa: B007
                if queued_path == path:
                    del self._queue[i]
                    break
            else:
                return None
        return item(rec) if callable(item) else item

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def boot() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
            await self._runner.setup()
            await web.SockSite(self._runner, sock).start()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(boot())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"{type(self).__name__}:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake server did not start")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        rec = Recorded(request.method, request.path, dict(request.query),
                       {k.lower(): v for k, v in request.headers.items()}, body, parsed)
        self.requests.append(rec)
        reply = self.validate(rec) or self._take(rec, rec.path)
        if reply is None:
            reply = self.route(rec) or self._take(rec, None) or self.default(rec)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.drop:
            return await self._abort(request)
        resp = web.StreamResponse(status=reply.status, headers=reply.headers)
        resp.content_type = reply.content_type
        if reply.chunks is None:
            if reply.truncate:
                resp.content_length = len(reply.body)
                await resp.prepare(request)
                await resp.write(reply.body[: len(reply.body) // 2])
                return await self._abort(request)
            resp.content_length = len(reply.body)
            await resp.prepare(request)
            await resp.write(reply.body)
            await resp.write_eof()
            return resp
        await resp.prepare(request)
        for i, chunk in enumerate(reply.chunks):
            if reply.cut_after is not None and i >= reply.cut_after:
                return await self._abort(request)
            if reply.chunk_delay and i:
                await asyncio.sleep(reply.chunk_delay)
            if reply.gate is not None and i == reply.gate[0]:
                await asyncio.to_thread(reply.gate[1].wait, 30)
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    @staticmethod
    async def _abort(request: web.Request) -> web.StreamResponse:
        # Closing the transport makes the client see a dropped connection; the handler then
        # ends quietly (aiohttp skips writing a response once the transport is gone).
        if request.transport is not None:
            request.transport.close()
        await asyncio.sleep(0)
        raise asyncio.CancelledError
