"""The HTTP transport shared by every LLM backend (and usable by `httpClient`).

One aiohttp `ClientSession` per event loop, created on first use and kept alive (connection reuse);
call `aclose()` before the loop ends (server shutdown, end of `--once`). Every call is bounded by an
absolute deadline (`time.monotonic()` seconds), so no request can hang. Failures become the typed
LLM errors: connection problems → LLMConnectionError, timeouts → LLMTimeoutError, a 2xx answer that is
not complete JSON → InvalidResponseError. Non-2xx answers are returned, not raised: mapping them is
the backend's job. Nothing here logs a header or a body.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import contextlib
import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from kdeps import fastjson
from kdeps.llm.backends.base import HttpCall
from kdeps.llm.errors import InvalidResponseError, LLMConnectionError, LLMTimeoutError

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""Largest answer read (whole JSON body, or a whole stream); beyond it the answer is invalid."""
CONNECT_TIMEOUT = 10.0
"""Longest wait for a TCP/TLS connection, whatever the remaining deadline."""

_sessions: dict[asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, AsyncIterator[None]]] = {}


def get_session() -> aiohttp.ClientSession:
    """The running loop's shared session (created on first use)."""
    loop = asyncio.get_running_loop()
    entry = _sessions.get(loop)
    if entry is None or entry[0].closed:
        _forget_dead_loops()
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=0, keepalive_timeout=30,
                                         ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None),
                                        auto_decompress=True, trust_env=False)
        entry = (session, _closer(session))
        _sessions[loop] = entry
        # Start the closer: the loop now tracks it as a live async generator, and asyncio.run /
        # asyncio.Runner finalise those before closing the loop, which closes the session even when
        # nobody called aclose().
        with contextlib.suppress(StopIteration):
            entry[1].asend(None).send(None)  # type: ignore[attr-defined]
    return entry[0]


async def _closer(session: aiohttp.ClientSession) -> AsyncIterator[None]:
    try:
        yield
    finally:
        if not session.closed:
            await session.close()


async def aclose() -> None:
    """Close the running loop's shared session (idempotent). Call it when the app shuts down."""
    loop = asyncio.get_running_loop()
    entry = _sessions.pop(loop, None)
    if entry is not None:
        await entry[1].aclose()  # type: ignore[attr-defined]
    _forget_dead_loops()


def _forget_dead_loops() -> None:
    # A session whose loop closed without finalising its async generators (loop.close() called by
    # hand) cannot be closed properly any more; marking its connector closed keeps aiohttp from
    # reporting it as leaked.
    for loop in [lp for lp in _sessions if lp.is_closed()]:
        session, _ = _sessions.pop(loop)
        connector = session.connector
        if connector is not None and not connector.closed:
            connector._close()


atexit.register(_forget_dead_loops)


def safe_url(url: str) -> str:
    """The URL as it may be shown or logged: no user info or fragment, each query value replaced
    by `***` (keys may ride in `?key=`); the names of the query parameters stay, to help debugging."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
    if not parts.scheme:
        return url.split("?", 1)[0].split("#", 1)[0]
    query = "&".join(pair.split("=", 1)[0] + ("=***" if "=" in pair else "")
                     for pair in parts.query.split("&") if pair)
    return f"{parts.scheme}://{host}{parts.path}" + (f"?{query}" if query else "")


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()]+")


def redact_urls(text: str) -> str:
    """`text` with every URL in it passed through `safe_url`."""
    return _URL_IN_TEXT.sub(lambda m: safe_url(m.group(0)), text)


def _remaining(deadline: float, backend: str, url: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise LLMTimeoutError(backend, f"deadline passed before calling {safe_url(url)}")
    return left


# the whole deadline is the asyncio.timeout around the call; aiohttp only caps the connect
_CONNECT_ONLY = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)


def _timeout(left: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=left, sock_connect=min(left, CONNECT_TIMEOUT))


def _encode(body: Any) -> bytes:
    return fastjson.dumps(body)


def _headers(call: HttpCall, accept: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": accept}
    headers.update(call.headers)
    return headers


def _translate(exc: BaseException, backend: str, url: str, left: float) -> Exception:
    """An aiohttp/OS/timeout failure as a typed LLM error."""
    where = safe_url(url)
    if isinstance(exc, TimeoutError):  # aiohttp's timeout errors subclass it too
        return LLMTimeoutError(backend, f"no answer from {where} within {left:.3g} s")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return InvalidResponseError(backend, f"answer from {where} was cut off ({error_reason(exc)})")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return LLMConnectionError(backend, f"{where} closed the connection without answering")
    return LLMConnectionError(backend, f"cannot reach {where} ({error_reason(exc)})")


def error_reason(exc: BaseException) -> str:
    """Why a call failed, for logs: the OS-level reason, or the message with its URLs redacted
    (aiohttp messages can embed the full URL, query string included)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.os_error.strerror or type(exc.os_error).__name__
    text = redact_urls(str(exc)).strip()
    return text or type(exc).__name__


async def _read_capped(response: aiohttp.ClientResponse, backend: str, url: str) -> bytes:
    length = response.content_length
    if length is not None and length > MAX_RESPONSE_BYTES:
        raise InvalidResponseError(backend, f"answer from {safe_url(url)} is too large ({length} bytes)")
    if length is not None:
        return await response.read()  # size known and within the cap: aiohttp's fast path
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise InvalidResponseError(
                backend, f"answer from {safe_url(url)} exceeds {MAX_RESPONSE_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_error_body(raw: bytes) -> tuple[Any, str]:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text), text
    except ValueError:
        return None, text


async def post_json(call: HttpCall, deadline: float, *, backend: str = "") -> tuple[int, Mapping[str, str],
                                                                                      Any, str]:
    """POST `call.body` as JSON; returns (status, headers, decoded JSON or None, raw text).

    A 2xx answer must be complete JSON (else InvalidResponseError); other statuses come back with
    `data` None when their body is not JSON. `deadline` is absolute, in `time.monotonic()` seconds."""
    left = _remaining(deadline, backend, call.url)
    session = get_session()
    try:
        async with asyncio.timeout(left), session.post(
            call.url, data=_encode(call.body), headers=_headers(call, "application/json"),
            params=call.params or None, timeout=_CONNECT_ONLY,
        ) as response:
            raw = await _read_capped(response, backend, call.url)
            status, headers = response.status, response.headers
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise _translate(exc, backend, call.url, left) from None
    if 200 <= status < 300:
        try:
            return status, headers, fastjson.loads(raw), ""
        except ValueError:
            shown = raw[:200].decode("utf-8", errors="replace")
            raise InvalidResponseError(
                backend, f"answer from {safe_url(call.url)} is not valid JSON "
                f"({len(raw)} bytes, starts {shown!r})", status) from None
    data, text = _decode_error_body(raw)
    return status, headers, data, text


# -- streaming ------------------------------------------------------------------------------------------

Event = tuple[str | None, str]
"""One stream item: (SSE event name or None, data). NDJSON lines come as (None, line)."""


class SSEDecoder:
    """Incremental Server-Sent Events parser: feed bytes split anywhere, get complete events.

    Comment lines (`: keep-alive`) are skipped, several `data:` lines of one event are joined with
    newlines, `id:`/`retry:` are ignored, and lines may end in LF, CRLF or CR."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[Event]:
        self._buf += self._text.decode(chunk)
        events: list[Event] = []
        while True:
            cut = _line_end(self._buf)
            if cut is None:
                break
            line, self._buf = self._buf[:cut[0]], self._buf[cut[1]:]
            self._line(line, events)
        return events

    def end(self) -> list[Event]:
        """The stream closed: a final event not followed by a blank line still counts if its line ended."""
        self._buf += self._text.decode(b"", final=True)
        events: list[Event] = []
        if self._buf.endswith("\r"):
            self._line(self._buf[:-1], events)
            self._buf = ""
        self._line("", events)
        return events

    def _line(self, line: str, out: list[Event]) -> None:
        if not line:
            if self._data:
                out.append((self._event, "\n".join(self._data)))
            self._event, self._data = None, []
            return
        if line.startswith(":"):
            return
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value or None


def _line_end(buf: str) -> tuple[int, int] | None:
    """(end of line, start of next) for the first complete line; a lone CR at the very end waits,
    since an LF may follow in the next chunk."""
    for i, ch in enumerate(buf):
        if ch == "\n":
            return i, i + 1
        if ch == "\r":
            if i + 1 == len(buf):
                return None
            return i, i + 2 if buf[i + 1] == "\n" else i + 1
    return None


class NDJSONDecoder:
    """Incremental newline-delimited JSON splitter: yields each non-blank line as (None, line)."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""

    def feed(self, chunk: bytes) -> list[Event]:
        self._buf += self._text.decode(chunk)
        *lines, self._buf = self._buf.split("\n")
        return [(None, s) for s in (ln.strip() for ln in lines) if s]

    def end(self) -> list[Event]:
        rest = (self._buf + self._text.decode(b"", final=True)).strip()
        self._buf = ""
        return [(None, rest)] if rest else []


class StreamResponse:
    """An open streaming answer: check `status`, then iterate `events()` (or `read_body()` on errors)."""

    def __init__(self, response: aiohttp.ClientResponse, backend: str, url: str, left: float) -> None:
        self._response, self._backend, self._url, self._left = response, backend, url, left
        self.status: int = response.status
        self.headers: Mapping[str, str] = response.headers
        self.complete = False

    async def read_body(self) -> tuple[Any, str]:
        """The whole (error) body: (decoded JSON or None, text)."""
        try:
            raw = await _read_capped(self._response, self._backend, self._url)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _translate(exc, self._backend, self._url, self._left) from None
        self.complete = True
        return _decode_error_body(raw)

    async def events(self, fmt: Literal["sse", "ndjson"]) -> AsyncGenerator[Event, None]:
        """The stream's events as they arrive, until the server closes it."""
        decoder = SSEDecoder() if fmt == "sse" else NDJSONDecoder()
        size = 0
        try:
            async for chunk in self._response.content.iter_any():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise InvalidResponseError(self._backend, f"stream from {safe_url(self._url)} exceeds "
                                               f"{MAX_RESPONSE_BYTES // (1024 * 1024)} MB")
                for event in decoder.feed(chunk):
                    yield event
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _translate(exc, self._backend, self._url, self._left) from None
        self.complete = True
        for event in decoder.end():
            yield event


@asynccontextmanager
async def open_stream(call: HttpCall, deadline: float, *, backend: str = "",
                      accept: str = "text/event-stream") -> AsyncIterator[StreamResponse]:
    """POST `call` and hold the answer open for streaming, bounded by `deadline` as a whole."""
    left = _remaining(deadline, backend, call.url)
    session = get_session()
    try:
        response = await session.post(
            call.url, data=_encode(call.body), headers=_headers(call, accept),
            params=call.params or None, timeout=_timeout(left), allow_redirects=True,
        )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise _translate(exc, backend, call.url, left) from None
    stream = StreamResponse(response, backend, call.url, left)
    try:
        yield stream
    finally:
        if stream.complete:
            response.release()  # fully read: the connection goes back to the pool
        else:
            response.close()  # abandoned mid-stream: never reuse a half-read connection
