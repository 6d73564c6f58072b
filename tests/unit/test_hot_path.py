"""The hot-path shortcuts give exactly what the long way gives: orjson against the standard library,
the action renderer's literal fast path against the engine's full render, the access line against
`json.dumps`, a response's usage and trace read from its records, the metric-free request body read."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import io
import json
import logging
import math
from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from kdeps import fastjson, logs
from kdeps.engine.request import RequestData, ResponseData
from kdeps.engine.runner import ActionRun, scope_render
from kdeps.engine.scope import RequestState, ResourceRecord, Scope
from kdeps.logs import configure
from kdeps.server.app import _read, _request_id
from kdeps.server.incoming import BodyTooLarge
from kdeps.server.streaming import ResponseSender, json_bytes

# -- fastjson --------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Point:
    x: int


_VALUES: list[Any] = [
    {"success": True, "data": {"answer": "Paris.", "n": 3, "f": 0.1, "none": None, "list": [1, 2.5, "x"]}},
    {"text": "héllo — 日本語 ✓", "emoji": "🙂", "escape": "quote \" backslash \\ newline \n tab \t"},
    [0.1, 2.5, 1234.5678, -0.0, 12345678901234567, True, False, None, ""],
    {"nested": [[[{"deep": [1]}]]]},
    {1: "int key", None: "none key", 2.5: "float key"},  # orjson refuses: json's own answer
    {"big": 2**70, "neg": -(2**65)},  # beyond 64 bits: json's own answer
    {"point": _Point(1), "when": datetime.datetime(2026, 1, 2, 3, 4, 5), "set": {1}},  # default=str
]


@pytest.mark.parametrize("value", _VALUES)
def test_dumps_is_json_dumps(value: Any) -> None:
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    assert fastjson.dumps(value, default=str) == expected
    assert json_bytes(value) == expected


def test_dumps_may_write_an_exponent_differently_but_not_the_number() -> None:
    value = [1e16, 1e-7, 6.02e23, 1.5e-300]
    assert json.loads(fastjson.dumps(value)) == value


def test_dumps_fails_as_json_does() -> None:
    with pytest.raises(TypeError):
        fastjson.dumps({"x": object()})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        fastjson.dumps(loop)


def test_dumps_writes_nan_as_null() -> None:
    assert fastjson.dumps({"x": math.nan, "y": math.inf}) == b'{"x":null,"y":null}'


@pytest.mark.parametrize("text", [
    b'{"a":1,"b":[true,false,null],"c":"\\u00e9\\ud83d\\ude42","d":1.5e300}',
    b'{"big":123456789012345678901234567890,"id":"chatcmpl-1234567890123456789"}',
    b'[NaN, Infinity, -Infinity]',
    b'\xef\xbb\xbf{"bom": 1}',
    '{"utf16": "x"}'.encode("utf-16"),
    '{"text": "caf\u00e9"}',
    b'{"dup":1,"dup":2}',
])
def test_loads_is_json_loads(text: bytes | str) -> None:
    expected = json.loads(text)
    got = fastjson.loads(text)
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert type(got["big"] if isinstance(got, dict) and "big" in got else 0) is int


@pytest.mark.parametrize("text", [b"", b"{", b'{"a":}', b"\xff\xfe\x00", "[1,]"])
def test_loads_refuses_what_json_refuses(text: bytes | str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        fastjson.loads(text)


# -- the action renderer's literal fast path -------------------------------------------------------

_FIELDS: list[Any] = [
    "http://127.0.0.1:8080/v1", "gpt-4o-mini", "sk-abc-123", "Hello world", "application/json",
    "upper('x')", "get('q')", "input.name", "request.method", "get('n') > 3", "len(get('q'))",
    "{{ get('q') }}", "Say {{ get('q') }} twice", "item.current()", "info('name')", "a.b.c", "1 + 2",
    "workflow.metadata.name", "  spaced  ", "", "x ?? 'y'", None, True, 3, 2.5, {}, {"k": "{{ get('q') }}"},
    ["get('q')", "plain"], {"nested": {"v": "get('q')"}},
]


@pytest.mark.parametrize("bare", [True, False])
def test_action_render_matches_the_engines_render(bare: bool) -> None:
    request = RequestData(method="POST", path="/x", body={"q": "Paris?", "n": 5, "name": "Ada"})
    state = RequestState(request, {})
    scope = Scope(state, "res")
    ctx = ActionRun.__new__(ActionRun)
    ctx.scope = scope
    for value in _FIELDS:
        assert ctx.render(value, bare=bare) == scope_render(scope, value, bare=bare), value


def test_a_literal_string_is_returned_as_is() -> None:
    ctx = ActionRun.__new__(ActionRun)
    ctx.scope = Scope(RequestState(RequestData(), {}), "res")
    url = "http://127.0.0.1:9/v1"
    assert ctx.render(url) is url


# -- access line -----------------------------------------------------------------------------------

@pytest.mark.parametrize("entry", [
    {"ts": "2026-12-01T15:00:00.123Z", "requestId": "a" * 32, "method": "POST", "path": "/api/v1/run",
     "route": "/api/v1/run", "status": 200, "durationMs": 0.45, "clientIp": "127.0.0.1", "bytes": 120,
     "resources": ["chat0", "response"]},
    {"ts": "t", "path": "/caf\u00e9/\U0001f642", "route": None, "status": 404, "durationMs": 1.0,
     "error": {"resource": None, "message": "no route for /café"}},
])
def test_access_line_is_json_dumps_of_the_entry(entry: dict[str, Any]) -> None:
    expected = json.dumps(entry, default=str, separators=(",", ":")) + "\n"
    stream = io.StringIO()
    configure("info", "json", stream=stream)
    try:
        logs.access(entry)  # straight through kdeps' handler
        assert stream.getvalue() == expected
        logging.getLogger("kdeps.access").info("ignored", extra={"entry": entry})  # the logging way
        assert stream.getvalue() == expected * 2
        other = logging.Handler()
        records: list[logging.LogRecord] = []
        other.emit = records.append  # type: ignore[method-assign]
        logging.getLogger("kdeps.access").addHandler(other)  # someone else listens: logging again
        try:
            logs.access(entry)
        finally:
            logging.getLogger("kdeps.access").removeHandler(other)
        assert stream.getvalue() == expected * 3 and records[0].getMessage() + "\n" == expected
    finally:
        configure("info", "json", stream=io.StringIO())


def test_access_line_in_text() -> None:
    stream = io.StringIO()
    configure("info", "text", stream=stream)
    try:
        logs.access({"method": "GET", "path": "/x", "status": 404, "durationMs": 1.5, "requestId": "r",
                     "error": {"resource": None, "message": "no route"}})
    finally:
        configure("info", "json", stream=io.StringIO())
    assert stream.getvalue().split(" ", 1)[1] == "GET /x 404 1.5ms  no route  [r]\n"


# -- response usage and trace ----------------------------------------------------------------------

def test_usage_and_trace_come_from_the_records() -> None:
    chat = ResourceRecord(meta={"status": "ok", "durationMs": 3.2, "usage": {
        "backend": "openai", "model": "m", "input_tokens": 12, "output_tokens": 2, "finish_reason": "stop"}})
    failed = ResourceRecord(meta={"status": "error", "durationMs": 1.0, "error": {"message": "boom"}})
    response = ResponseData(200, {}, records={"chat": chat, "other": failed})
    assert response.usage == {"input_tokens": 12, "output_tokens": 2}
    assert response.trace == [
        {"resource": "chat", "status": "ok", "durationMs": 3.2, "backend": "openai", "model": "m",
         "input_tokens": 12, "output_tokens": 2, "finish_reason": "stop"},
        {"resource": "other", "status": "error", "durationMs": 1.0, "error": "boom"}]
    assert ResponseData(500, {}).usage is None and ResponseData(500, {}).trace is None


# -- request body and ids --------------------------------------------------------------------------

def _receiver(messages: list[dict[str, Any]]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def test_body_is_read_whole_within_the_limit() -> None:
    chunks = [{"type": "http.request", "body": b"ab", "more_body": True},
              {"type": "http.request", "body": b"", "more_body": True},
              {"type": "http.request", "body": b"cd", "more_body": False}]
    assert asyncio.run(_read(_receiver(chunks), 4)) == b"abcd"
    assert asyncio.run(_read(_receiver([{"type": "http.request"}]), 4)) == b""
    with pytest.raises(BodyTooLarge):
        asyncio.run(_read(_receiver(chunks), 3))
    with pytest.raises(ClientDisconnect):
        asyncio.run(_read(_receiver([chunks[0], {"type": "http.disconnect"}]), 10))


def test_request_ids_are_uuid4_hex() -> None:
    import uuid

    ids = {_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in list(ids)[:50]:
        assert uuid.UUID(hex=value).version == 4 and uuid.UUID(hex=value).hex == value


def test_sender_adds_default_headers_the_response_does_not_set() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    defaults = ((b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"))
    sender = ResponseSender(send, {"x-request-id": "r1"}, defaults=defaults)
    asyncio.run(sender.whole(200, {"content-type": "application/json", "x-frame-options": "SAMEORIGIN"},
                             b"{}"))
    assert sent[0]["headers"] == [(b"content-type", b"application/json"), (b"x-frame-options", b"SAMEORIGIN"),
                                  (b"x-request-id", b"r1"), (b"content-length", b"2"),
                                  (b"x-content-type-options", b"nosniff")]
    assert sent[1] == {"type": "http.response.body", "body": b"{}"}
