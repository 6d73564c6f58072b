"""The shared HTTP transport against real servers on 127.0.0.1: JSON calls, streams, errors, deadlines."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from kdeps.llm import transport
from kdeps.llm.backends.base import HttpCall
from kdeps.llm.errors import InvalidResponseError, LLMConnectionError, LLMTimeoutError
from kdeps.llm.transport import NDJSONDecoder, SSEDecoder
from tests.fakes.base import FakeServer, drop, json_reply, slow, stream_reply, text_reply, truncated


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


@pytest.fixture(autouse=True)
async def _session(server: FakeServer) -> AsyncIterator[None]:
    server.reset()
    yield
    await transport.aclose()


def _call(server: FakeServer, path: str = "/chat", **params: str) -> HttpCall:
    return HttpCall(url=server.url + path, headers={"Authorization": "Bearer k"}, body={"q": "hi"},
                    params=dict(params))


def _deadline(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- SSE / NDJSON decoding --------------------------------------------------------------------------------

SSE_TEXT = (
    ": keep-alive\r\n"
    "\r\n"
    "data: {\"a\": \"héllo ✓\"}\r\n"
    "\r\n"
    "event: message_start\n"
    "data: first line\n"
    "data:second line\n"
    "id: 7\n"
    "retry: 100\n"
    "\n"
    ": another comment\r"
    "data: cr-only\r"
    "\r"
    "event: done\n"
    "data: [DONE]\n"
    "\n"
    "event: lonely\n"
    "\n"
    "data: tail-without-blank-line\n"
)
SSE_EVENTS = [
    (None, '{"a": "héllo ✓"}'),
    ("message_start", "first line\nsecond line"),
    (None, "cr-only"),
    ("done", "[DONE]"),
    (None, "tail-without-blank-line"),
]


def _decode(decoder: SSEDecoder | NDJSONDecoder, chunks: list[bytes]) -> list[tuple[str | None, str]]:
    events = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events + decoder.end()


def test_sse_decoder_whole_stream() -> None:
    assert _decode(SSEDecoder(), [SSE_TEXT.encode()]) == SSE_EVENTS


def test_sse_decoder_any_split_point() -> None:
    raw = SSE_TEXT.encode()
    for cut in range(1, len(raw)):  # includes cuts inside "\r\n" and inside multi-byte UTF-8 characters
        assert _decode(SSEDecoder(), [raw[:cut], raw[cut:]]) == SSE_EVENTS, cut
    assert _decode(SSEDecoder(), [raw[i:i + 1] for i in range(len(raw))]) == SSE_EVENTS


def test_sse_decoder_drops_a_line_cut_mid_way() -> None:
    # a data line the connection cut before its end is not delivered; only complete lines count
    assert _decode(SSEDecoder(), [b"data: one\n\ndata: {\"half"]) == [(None, "one")]
    assert _decode(SSEDecoder(), [b"data: one\n\n", b"event: x"]) == [(None, "one")]


def test_ndjson_decoder_any_split_point() -> None:
    raw = b'{"a":1}\n\n{"b":"\xc3\xa9"}\r\n   \n{"done":true}'
    expected = [(None, '{"a":1}'), (None, '{"b":"é"}'), (None, '{"done":true}')]
    for cut in range(1, len(raw)):
        assert _decode(NDJSONDecoder(), [raw[:cut], raw[cut:]]) == expected, cut


# -- streams over HTTP --------------------------------------------------------------------------------------

async def test_stream_events_over_http_with_odd_chunking(server: FakeServer) -> None:
    raw = SSE_TEXT.encode()
    chunks = [raw[i:i + 7] for i in range(0, len(raw), 7)]
    server.push(stream_reply(chunks))
    async with transport.open_stream(_call(server), _deadline(), backend="t") as response:
        assert response.status == 200
        events = [e async for e in response.events("sse")]
    assert events == SSE_EVENTS
    assert server.last.header("accept") == "text/event-stream"
    assert json.loads(server.last.body) == {"q": "hi"}


async def test_ndjson_stream_over_http(server: FakeServer) -> None:
    chunks = ['{"m":"a"}\n{"m"', ':"b"}\n', '{"done":true}\n']
    server.push(stream_reply(chunks, content_type="application/x-ndjson"))
    async with transport.open_stream(_call(server), _deadline(), accept="application/x-ndjson") as response:
        events = [data async for _, data in response.events("ndjson")]
    assert [json.loads(e) for e in events] == [{"m": "a"}, {"m": "b"}, {"done": True}]


async def test_stream_error_status_body_is_readable(server: FakeServer) -> None:
    server.push(json_reply({"error": {"message": "nope"}}, status=429, headers={"Retry-After": "3"}))
    async with transport.open_stream(_call(server), _deadline(), backend="t") as response:
        assert response.status == 429
        assert response.headers["retry-after"] == "3"
        data, text = await response.read_body()
    assert data == {"error": {"message": "nope"}}
    assert "nope" in text


async def test_stream_cut_mid_way_is_an_error(server: FakeServer) -> None:
    server.push(stream_reply(["data: 1\n\n", "data: 2\n\n", "data: 3\n\n"], cut_after=1))
    seen = []
    with pytest.raises((InvalidResponseError, LLMConnectionError)):
        async with transport.open_stream(_call(server), _deadline(), backend="t") as response:
            async for event in response.events("sse"):
                seen.append(event)
    assert seen == [(None, "1")]


async def test_stream_bounded_by_deadline(server: FakeServer) -> None:
    server.push(stream_reply(["data: 1\n\n", "data: 2\n\n"], chunk_delay=3))
    start = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        async with transport.open_stream(_call(server), _deadline(0.5), backend="t") as response:
            async for _ in response.events("sse"):
                pass
    assert time.monotonic() - start < 1.5


# -- JSON calls -------------------------------------------------------------------------------------------

async def test_post_json_ok_and_error_statuses(server: FakeServer) -> None:
    server.push(json_reply({"text": "hi"}), json_reply({"error": "bad"}, status=400), text_reply("oops", 502))
    status, _, data, _ = await transport.post_json(_call(server, tag="1"), _deadline())
    assert (status, data) == (200, {"text": "hi"})
    assert server.last.query == {"tag": "1"}
    assert server.last.header("content-type") == "application/json"
    assert server.last.header("authorization") == "Bearer k"
    status, _, data, text = await transport.post_json(_call(server), _deadline())
    assert (status, data) == (400, {"error": "bad"})
    status, _, data, text = await transport.post_json(_call(server), _deadline())
    assert (status, data, text) == (502, None, "oops")


async def test_non_json_2xx_is_invalid_response(server: FakeServer) -> None:
    server.push(text_reply('{"text": "cut sho', content_type="application/json"))
    with pytest.raises(InvalidResponseError, match="not valid JSON"):
        await transport.post_json(_call(server), _deadline(), backend="t")


async def test_truncated_body_is_invalid_response(server: FakeServer) -> None:
    server.push(truncated(json_reply({"text": "x" * 200})))
    with pytest.raises(InvalidResponseError, match="cut off"):
        await transport.post_json(_call(server), _deadline(), backend="t")


async def test_dropped_connection_is_connection_error(server: FakeServer) -> None:
    server.push(drop())
    with pytest.raises(LLMConnectionError):
        await transport.post_json(_call(server), _deadline(), backend="t")


async def test_refused_connection_names_url_but_not_query() -> None:
    call = HttpCall(url=f"http://127.0.0.1:{_closed_port()}/v1/chat?key=SECRET-KEY-123", headers={},
                    body={}, params={"key": "SECRET-KEY-456"})
    with pytest.raises(LLMConnectionError) as info:
        await transport.post_json(call, _deadline(), backend="t")
    assert "127.0.0.1" in info.value.detail and "/v1/chat" in info.value.detail  # for the log
    assert "127.0.0.1" not in str(info.value)  # what a client may see
    assert "SECRET" not in str(info.value) and "SECRET" not in info.value.detail


async def test_slow_server_times_out_at_deadline(server: FakeServer) -> None:
    server.push(slow(json_reply({"text": "late"}), 3))
    start = time.monotonic()
    with pytest.raises(LLMTimeoutError, match=r"within 0\.4"):
        await transport.post_json(_call(server), _deadline(0.4), backend="t")
    assert time.monotonic() - start < 1.0


async def test_passed_deadline_fails_without_a_request(server: FakeServer) -> None:
    with pytest.raises(LLMTimeoutError):
        await transport.post_json(_call(server), time.monotonic() - 1, backend="t")
    assert server.requests == []


async def test_response_size_cap(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "MAX_RESPONSE_BYTES", 1000)
    server.push(json_reply({"text": "x" * 5000}))
    with pytest.raises(InvalidResponseError, match="too large"):
        await transport.post_json(_call(server), _deadline(), backend="t")
    server.push(stream_reply(["data: " + "y" * 600 + "\n\n"] * 3))
    with pytest.raises(InvalidResponseError, match="exceeds"):
        async with transport.open_stream(_call(server), _deadline(), backend="t") as response:
            async for _ in response.events("sse"):
                pass


# -- the shared session -------------------------------------------------------------------------------------

async def test_one_session_per_loop_reused_and_closed(server: FakeServer) -> None:
    session = transport.get_session()
    assert transport.get_session() is session
    for _ in range(3):
        await transport.post_json(_call(server), _deadline())
    assert transport.get_session() is session and not session.closed
    await transport.aclose()
    assert session.closed
    assert transport.get_session() is not session


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the hand-closed loop leaks its socket, by design
def test_sessions_close_with_their_loop(server: FakeServer) -> None:
    sessions = []

    async def once() -> int:
        sessions.append(transport.get_session())
        status, *_ = await transport.post_json(_call(server), _deadline())
        return status

    # asyncio.run without aclose(): the session is closed as the loop shuts down
    assert asyncio.run(once()) == 200
    assert sessions[0].closed
    # a loop closed by hand (no async-generator shutdown) is forgotten by the next loop's first call
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(once()) == 200
    loop.close()
    assert not sessions[1].closed and loop in transport._sessions
    assert asyncio.run(once()) == 200
    assert sessions[1].closed and loop not in transport._sessions
