"""The LLM client (deadline, retries, streaming, fallback, keys) against real HTTP servers on 127.0.0.1.

The backend here is a tiny test-only one speaking a trivial JSON protocol (`POST /chat` →
`{"text": …}`, SSE `data: {"t": …}` … `data: [DONE]`, or NDJSON), so these tests exercise the real
client and transport without depending on any provider's wire format."""

from __future__ import annotations

import email.utils
import json
import logging
import math
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from kdeps.llm import client, registry, transport
from kdeps.llm.backends.base import Backend, HttpCall, StreamParser
from kdeps.llm.client import RetryPolicy, complete, complete_with_fallback, redact, stream
from kdeps.llm.errors import (
    AuthError,
    BadRequestError,
    InvalidResponseError,
    LLMConnectionError,
    LLMTimeoutError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
)
from kdeps.llm.registry import UnknownBackendError
from kdeps.llm.types import ChatRequest, ChatResult, Endpoint, Message, StreamDelta, Usage
from tests.fakes.base import (
    FakeServer,
    Recorded,
    Reply,
    drop,
    json_reply,
    ndjson,
    slow,
    sse,
    stream_reply,
    text_reply,
    truncated,
)

KEY = "tk-live-9f8e7d6c5b4a"
FAST = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.05)
HONOUR = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=5.0)  # server waits up to 5 s are honoured


class JsonStreamParser(StreamParser):
    def __init__(self) -> None:
        self._done = False

    def feed(self, event: str | None, data: str) -> list[StreamDelta]:
        if data == "[DONE]":
            self._done = True
            return []
        obj = json.loads(data)
        if "error" in obj:
            raise UpstreamError("testjson", obj["error"])
        if obj.get("end"):
            self._done = True
            return [StreamDelta(usage=Usage(1, 2), finish_reason="stop")]
        return [StreamDelta(text=obj["t"])]

    def done(self) -> bool:
        return self._done

    def finish(self) -> list[StreamDelta]:
        if not self._done:
            raise InvalidResponseError("testjson", "stream ended before its end marker")
        return []


class JsonBackend(Backend):
    """Test-only backend: the key goes in a Bearer header; the answer is `{"text": ...}`."""

    name = "testjson"
    env_var = "TESTJSON_API_KEY"
    default_base_url = ""

    def build(self, request: ChatRequest, endpoint: Endpoint, *, stream: bool = False) -> HttpCall:
        body = {"model": request.model, "prompt": request.messages[-1].content, "stream": stream}
        return HttpCall(url=endpoint.base_url + "/chat",
                        headers={"Authorization": f"Bearer {endpoint.api_key}"}, body=body)

    def parse(self, data: Any) -> ChatResult:
        if not isinstance(data, dict) or "text" not in data:
            raise InvalidResponseError(self.name, "no text in answer")
        return ChatResult(text=data["text"], model=data.get("model", ""))

    def stream_parser(self) -> StreamParser:
        return JsonStreamParser()


class AltBackend(JsonBackend):
    name = "testalt"
    env_var = "TESTALT_API_KEY"


class NdjsonBackend(JsonBackend):
    name = "testnd"
    env_var = None
    stream_format = "ndjson"


class FakeLocal:
    """Test-only in-process backend (the LocalBackend protocol)."""

    name = "testlocal"
    env_var = None
    delay = 0.0

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> ChatResult:
        import asyncio

        await asyncio.sleep(self.delay)
        return ChatResult(text=f"local:{request.messages[-1].content}")

    async def stream(self, request: ChatRequest, endpoint: Endpoint) -> AsyncIterator[StreamDelta]:
        for word in ("a", "b", "c"):
            yield StreamDelta(text=word)


class JsonFake(FakeServer):
    """Answers `{"text": "ok"}`; rejects a wrong key with a 401 that echoes it, as some providers do."""

    def validate(self, rec: Recorded) -> Reply | None:
        auth = rec.header("authorization", "")
        if auth != f"Bearer {KEY}":
            return json_reply({"error": f"Incorrect API key provided: {auth.removeprefix('Bearer ')}"}, 401)
        return None

    def default(self, rec: Recorded) -> Reply:
        if rec.json and rec.json.get("stream"):
            return stream_reply([sse({"t": "o"}), sse({"t": "k"}), sse("[DONE]")])
        return json_reply({"text": "ok", "model": rec.json["model"] if rec.json else ""})


@pytest.fixture(scope="module")
def primary() -> Iterator[JsonFake]:
    with JsonFake() as fake:
        yield fake


@pytest.fixture(scope="module")
def secondary() -> Iterator[JsonFake]:
    with JsonFake() as fake:
        yield fake


@pytest.fixture(autouse=True)
async def _setup(primary: JsonFake, secondary: JsonFake) -> AsyncIterator[None]:
    primary.reset()
    secondary.reset()
    for cls in (JsonBackend, AltBackend, NdjsonBackend):
        registry.register_backend(cls.name, cls, env_var=cls.env_var)
    registry.register_backend("testlocal", FakeLocal)
    yield
    for name in ("testjson", "testalt", "testnd", "testlocal"):
        registry.unregister_backend(name)
    await transport.aclose()


def _req(timeout: float = 5.0, model: str = "m1") -> ChatRequest:
    return ChatRequest(model=model, messages=[Message(role="user", content="hi")], timeout=timeout)


def _ep(fake: FakeServer, backend: str = "testjson", key: str | None = KEY) -> Endpoint:
    return Endpoint(backend=backend, base_url=fake.url, api_key=key)


# -- plain calls and retries -----------------------------------------------------------------------

async def test_complete_ok(primary: JsonFake) -> None:
    result = await complete(_req(), _ep(primary))
    assert (result.text, result.backend, result.attempts, result.model) == ("ok", "testjson", 1, "m1")
    assert primary.last.json == {"model": "m1", "prompt": "hi", "stream": False}


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits the client takes between attempts, taken at once instead of slept."""
    seen: list[float] = []

    async def record(seconds: float) -> None:
        seen.append(seconds)

    monkeypatch.setattr(client, "_sleep", record)
    return seen


async def test_retry_after_seconds_is_honoured(primary: JsonFake, waits: list[float]) -> None:
    primary.push(json_reply({"error": "slow down"}, 429, headers={"Retry-After": "1"}))
    result = await complete(_req(), _ep(primary), retry=HONOUR)
    assert waits == [pytest.approx(1.0, abs=0.05)]
    assert (result.text, result.attempts, len(primary.requests)) == ("ok", 2, 2)


async def test_retry_after_ms_is_honoured(primary: JsonFake, waits: list[float]) -> None:
    headers = {"retry-after-ms": "400", "Retry-After": "9"}  # the precise one wins
    primary.push(json_reply({"error": "slow down"}, 429, headers=headers))
    result = await complete(_req(), _ep(primary), retry=HONOUR)
    assert waits == [pytest.approx(0.4, abs=0.05)]
    assert result.attempts == 2


async def test_retry_after_http_date_is_honoured(primary: JsonFake, waits: list[float]) -> None:
    due = math.ceil(time.time() + 0.5)  # an HTTP date has whole seconds: a wait in [0.5, 1.5)
    primary.push(json_reply({"error": "slow down"}, 503,
                            headers={"Retry-After": email.utils.formatdate(due, usegmt=True)}))
    result = await complete(_req(), _ep(primary), retry=HONOUR)
    assert len(waits) == 1 and 0.4 <= waits[0] <= 1.55
    assert result.attempts == 2


async def test_retry_after_beyond_max_delay_uses_backoff(primary: JsonFake, waits: list[float]) -> None:
    primary.push(json_reply({"error": "later"}, 429, headers={"Retry-After": "3"}))
    result = await complete(_req(timeout=10), _ep(primary), retry=FAST)
    assert len(waits) == 1 and waits[0] < 1
    assert result.attempts == 2


async def test_server_errors_then_success(primary: JsonFake) -> None:
    primary.push(json_reply({"error": "boom"}, 500), json_reply({"error": "boom"}, 500))
    result = await complete(_req(), _ep(primary), retry=FAST)
    assert (result.text, result.attempts, len(primary.requests)) == ("ok", 3, 3)


@pytest.mark.parametrize("status", [408, 409, 502, 503, 529])
async def test_transient_statuses_are_retried(primary: JsonFake, status: int) -> None:
    primary.push(json_reply({"error": "busy"}, status))
    result = await complete(_req(), _ep(primary), retry=FAST)
    assert result.attempts == 2


async def test_attempts_exhausted_raises_last_error(primary: JsonFake) -> None:
    primary.push(*[json_reply({"error": f"boom {i}"}, 500) for i in range(3)])
    with pytest.raises(UpstreamError, match="boom 2") as info:
        await complete(_req(), _ep(primary), retry=FAST)
    assert info.value.upstream_status == 500
    assert len(primary.requests) == 3


@pytest.mark.parametrize(("status", "error"), [(400, BadRequestError), (401, AuthError), (403, AuthError),
                                               (404, NotFoundError), (422, BadRequestError)])
async def test_request_errors_are_not_retried(primary: JsonFake, status: int, error: type) -> None:
    primary.push(json_reply({"error": "no way"}, status))
    with pytest.raises(error, match="no way") as info:
        await complete(_req(), _ep(primary), retry=FAST)
    assert info.value.upstream_status == status
    assert len(primary.requests) == 1


async def test_dropped_connection_is_retried(primary: JsonFake) -> None:
    primary.push(drop())
    result = await complete(_req(), _ep(primary), retry=FAST)
    assert (result.text, result.attempts) == ("ok", 2)


async def test_refused_connection_fails_after_retries() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = Endpoint(backend="testjson", base_url=f"http://127.0.0.1:{port}", api_key=KEY)
    with pytest.raises(LLMConnectionError, match="cannot reach the upstream") as info:
        await complete(_req(), endpoint, retry=FAST)
    assert f"127.0.0.1:{port}/chat" in info.value.detail
    assert f"all {FAST.max_attempts} attempts" in str(info.value)  # `retry:` written: retried


async def test_refused_local_connection_without_retry_fails_at_once() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = Endpoint(backend="testjson", base_url=f"http://localhost:{port}", api_key=KEY)
    with pytest.raises(LLMConnectionError) as info:
        await complete(_req(), endpoint)  # no `retry:`: a local server that is down fails at once
    assert "attempts" not in str(info.value)


async def test_invalid_json_is_retried(primary: JsonFake) -> None:
    primary.push(text_reply('{"text": "o', content_type="application/json"),
                 truncated(json_reply({"text": "ok"})), json_reply({"wrong": "shape"}))
    result = await complete(_req(), _ep(primary), retry=RetryPolicy(4, 0.01, 0.05))
    assert (result.text, result.attempts) == ("ok", 4)


async def test_invalid_json_every_time(primary: JsonFake) -> None:
    primary.push(*[text_reply("<html>gateway</html>", content_type="text/html")] * 3)
    with pytest.raises(InvalidResponseError, match="not valid JSON"):
        await complete(_req(), _ep(primary), retry=FAST)
    assert len(primary.requests) == 3


async def test_deadline_enforced_on_a_slow_server(primary: JsonFake) -> None:
    primary.push(slow(json_reply({"text": "late"}), 3))
    start = time.monotonic()
    with pytest.raises(LLMTimeoutError, match=r"0\.6 s") as info:
        await complete(_req(timeout=0.6), _ep(primary), retry=FAST)
    assert time.monotonic() - start < 0.6 + 0.4
    assert "retries included" in str(info.value)


async def test_deadline_covers_retries(primary: JsonFake) -> None:
    primary.push(*[slow(json_reply({"error": "boom"}, 500), 0.3) for _ in range(5)])
    start = time.monotonic()
    with pytest.raises((LLMTimeoutError, UpstreamError)):
        await complete(_req(timeout=0.8), _ep(primary), retry=RetryPolicy(10, 0.01, 0.05))
    assert time.monotonic() - start < 0.8 + 0.4


async def test_retry_after_beyond_deadline_fails_at_once(primary: JsonFake) -> None:
    primary.push(json_reply({"error": "quota"}, 429, headers={"Retry-After": "30"}))
    start = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        await complete(_req(timeout=2), _ep(primary), retry=RetryPolicy(3, 0.01, 60))
    assert time.monotonic() - start < 0.5
    assert info.value.retry_after == pytest.approx(30, abs=1)
    assert len(primary.requests) == 1


async def test_backoff_beyond_deadline_fails_at_once(primary: JsonFake) -> None:
    primary.push(json_reply({"error": "boom"}, 500))
    start = time.monotonic()
    with pytest.raises(UpstreamError):
        await complete(_req(timeout=1), _ep(primary), retry=RetryPolicy(3, 5.0, 10.0))
    assert time.monotonic() - start < 0.5
    assert len(primary.requests) == 1


async def test_retries_are_logged(primary: JsonFake, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kdeps.llm")
    primary.push(json_reply({"error": "busy"}, 503))
    await complete(_req(), _ep(primary), retry=FAST)
    (record,) = [r for r in caplog.records if r.name == "kdeps.llm"]
    assert record.levelno == logging.WARNING
    assert "testjson" in record.getMessage() and "HTTP 503" in record.getMessage()
    assert "retrying in" in record.getMessage()


# -- retry policy ----------------------------------------------------------------------------------

def test_retry_policy_backoff_and_config() -> None:
    config = {"maxAttempts": 5, "initialDelay": 1, "maxDelay": 3, "backoffMultiplier": 2}
    policy = RetryPolicy.from_config(config)
    assert policy == RetryPolicy(5, 1.0, 3.0, 2.0)
    waits = [policy.backoff(n) for n in (1, 2, 3, 4)]
    for wait, base in zip(waits, (1, 2, 3, 3), strict=True):
        assert 0.75 * base <= wait <= base
    assert RetryPolicy.from_config(None) == RetryPolicy()
    assert RetryPolicy.from_config({"max_attempts": 1}).max_attempts == 1
    for bad in ({"maxAttempts": 0}, {"initialDelay": -1}, {"backoffMultiplier": 0.5}):
        with pytest.raises(ValueError):
            RetryPolicy.from_config(bad)


async def test_single_attempt_policy(primary: JsonFake) -> None:
    primary.push(json_reply({"error": "boom"}, 500))
    with pytest.raises(UpstreamError):
        await complete(_req(), _ep(primary), retry=RetryPolicy(max_attempts=1))
    assert len(primary.requests) == 1


# -- keys ------------------------------------------------------------------------------------------

async def test_missing_key_fails_before_any_request(primary: JsonFake) -> None:
    with pytest.raises(AuthError, match="TESTJSON_API_KEY") as info:
        await complete(_req(), _ep(primary, key=None))
    assert info.value.upstream_status == 0
    with pytest.raises(AuthError, match="TESTJSON_API_KEY"):
        await complete(_req(), _ep(primary, key="  "))
    assert primary.requests == []


def test_redact() -> None:
    assert redact("key sk-abc and sk-abcdef", ["sk-abc", "sk-abcdef", None, ""]) == "key *** and ***"
    assert redact("nothing here", []) == "nothing here"
    assert redact("a key k in the text", ["k"]) == "a key k in the text"  # too short to be a key


async def test_key_never_in_errors_or_logs(primary: JsonFake, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "tk-wrong-0123456789abcdef"
    with pytest.raises(AuthError) as info:
        await complete(_req(), _ep(primary, key=wrong), retry=FAST)
    assert "Incorrect API key" in str(info.value)
    # a retried error that echoes the key, then a fallback that fails the same way
    primary.push(json_reply({"error": f"upstream saw {KEY}"}, 500),
                 json_reply({"error": f"again {KEY}"}, 500), json_reply({"error": f"still {KEY}"}, 500))
    with pytest.raises(AuthError) as info2:
        await complete_with_fallback(_req(), _ep(primary), [(_ep(primary, "testalt", key=wrong), None)],
                                     retry=FAST)
    texts = [str(info.value), repr(info.value), str(info2.value), *(r.getMessage() for r in caplog.records)]
    assert "still ***" in str(info2.value) and "Incorrect API key provided: ***" in str(info2.value)
    for text in texts:
        assert wrong not in text and KEY not in text


# -- streaming -------------------------------------------------------------------------------------

async def _collect(deltas: AsyncIterator[StreamDelta]) -> list[StreamDelta]:
    return [d async for d in deltas]


async def test_stream_deltas(primary: JsonFake) -> None:
    primary.push(stream_reply([": keep-alive\n\n", sse({"t": "Hel"}), sse({"t": "lo"}), sse({"end": True}),
                               sse("[DONE]")]))
    deltas = await _collect(stream(_req(), _ep(primary)))
    assert "".join(d.text for d in deltas) == "Hello"
    assert deltas[-1].usage == Usage(1, 2)
    assert primary.last.json["stream"] is True
    assert primary.last.header("accept") == "text/event-stream"


async def test_stream_retried_before_first_delta(primary: JsonFake) -> None:
    primary.push(json_reply({"error": "busy"}, 503), drop())
    deltas = await _collect(stream(_req(), _ep(primary), retry=FAST))
    assert "".join(d.text for d in deltas) == "ok"
    assert len(primary.requests) == 3


async def test_stream_not_retried_after_first_delta(primary: JsonFake) -> None:
    primary.push(stream_reply([sse({"t": "par"}), sse({"t": "tial"}), sse("[DONE]")], cut_after=1))
    seen: list[str] = []
    with pytest.raises((InvalidResponseError, LLMConnectionError)):
        async for delta in stream(_req(), _ep(primary), retry=FAST):
            seen.append(delta.text)
    assert seen == ["par"]
    assert len(primary.requests) == 1


async def test_stream_error_event_mid_way(primary: JsonFake) -> None:
    primary.push(stream_reply([sse({"t": "a"}), sse({"error": "overloaded"})]))
    with pytest.raises(UpstreamError, match="overloaded"):
        await _collect(stream(_req(), _ep(primary), retry=FAST))
    assert len(primary.requests) == 1


async def test_stream_4xx_not_retried(primary: JsonFake) -> None:
    primary.push(json_reply({"error": "bad model"}, 404))
    with pytest.raises(NotFoundError, match="bad model"):
        await _collect(stream(_req(), _ep(primary), retry=FAST))
    assert len(primary.requests) == 1


async def test_stream_deadline(primary: JsonFake) -> None:
    primary.push(stream_reply([sse({"t": "a"}), sse({"t": "b"}), sse("[DONE]")], chunk_delay=2))
    start = time.monotonic()
    with pytest.raises(LLMTimeoutError, match=r"0\.5 s"):
        await _collect(stream(_req(timeout=0.5), _ep(primary)))
    assert time.monotonic() - start < 1.0


async def test_ndjson_stream(primary: JsonFake) -> None:
    primary.push(stream_reply([ndjson({"t": "x"}) + "\n", ndjson({"t": "y"})[:3], ndjson({"t": "y"})[3:],
                               ndjson({"end": True})], content_type="application/x-ndjson"))
    deltas = await _collect(stream(_req(), _ep(primary, "testnd")))
    assert "".join(d.text for d in deltas) == "xy"
    assert primary.last.header("accept") == "application/x-ndjson"


# -- fallback --------------------------------------------------------------------------------------

async def test_fallback_after_primary_retries(primary: JsonFake, secondary: JsonFake) -> None:
    primary.push(*[json_reply({"error": "down"}, 500)] * 3)
    alternatives = [(_ep(secondary, "testalt"), "m2")]
    result = await complete_with_fallback(_req(), _ep(primary), alternatives, retry=FAST)
    assert (result.text, result.backend, result.model, result.attempts) == ("ok", "testalt", "m2", 4)
    assert len(primary.requests) == 3 and len(secondary.requests) == 1
    assert secondary.last.json["model"] == "m2"


async def test_no_fallback_needed(primary: JsonFake, secondary: JsonFake) -> None:
    result = await complete_with_fallback(_req(), _ep(primary), [_ep(secondary, "testalt")], retry=FAST)
    assert (result.backend, result.attempts) == ("testjson", 1)
    assert secondary.requests == []


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_request_errors_do_not_fall_back(primary: JsonFake, secondary: JsonFake, status: int) -> None:
    primary.push(json_reply({"error": "refused"}, status))
    with pytest.raises((AuthError, BadRequestError, NotFoundError)):
        await complete_with_fallback(_req(), _ep(primary), [(_ep(secondary, "testalt"), None)], retry=FAST)
    assert len(primary.requests) == 1 and secondary.requests == []


async def test_long_retry_after_falls_back_at_once(primary: JsonFake, secondary: JsonFake) -> None:
    primary.push(json_reply({"error": "quota"}, 429, headers={"Retry-After": "120"}))
    start = time.monotonic()
    result = await complete_with_fallback(_req(timeout=5), _ep(primary), [(_ep(secondary, "testalt"), None)],
                                          retry=RetryPolicy(3, 0.01, 300))
    assert time.monotonic() - start < 0.5
    assert result.backend == "testalt"
    assert len(primary.requests) == 1


async def test_every_alternative_fails(primary: JsonFake, secondary: JsonFake) -> None:
    primary.push(*[json_reply({"error": "first down"}, 503)] * 3)
    secondary.push(*[json_reply({"error": "second down"}, 502)] * 3)
    with pytest.raises(UpstreamError) as info:
        await complete_with_fallback(_req(), _ep(primary), [(_ep(secondary, "testalt"), None)], retry=FAST)
    message = str(info.value)
    assert message.startswith("testalt HTTP 502: second down")
    assert "first down" in message


async def test_fallback_missing_key_is_reported(primary: JsonFake, secondary: JsonFake) -> None:
    primary.push(*[json_reply({"error": "down"}, 500)] * 3)
    with pytest.raises(AuthError, match="TESTALT_API_KEY"):
        await complete_with_fallback(_req(), _ep(primary), [_ep(secondary, "testalt", key=None)], retry=FAST)
    assert secondary.requests == []


async def test_streamed_fallback_before_first_delta(primary: JsonFake, secondary: JsonFake) -> None:
    primary.push(*[json_reply({"error": "down"}, 500)] * 3)
    secondary.push(stream_reply([sse({"t": "from "}), sse({"t": "alt"}), sse({"end": True}), sse("[DONE]")]))
    pieces: list[str] = []

    async def on_delta(text: str) -> None:
        pieces.append(text)

    result = await complete_with_fallback(_req(), _ep(primary), [(_ep(secondary, "testalt"), None)],
                                          retry=FAST, on_delta=on_delta)
    assert pieces == ["from ", "alt"]
    assert (result.text, result.backend, result.usage, result.finish_reason) == ("from alt", "testalt",
                                                                                 Usage(1, 2), "stop")


async def test_streamed_no_fallback_after_first_delta(primary: JsonFake, secondary: JsonFake) -> None:
    primary.push(stream_reply([sse({"t": "half"}), sse({"t": "way"})], cut_after=1))
    pieces: list[str] = []

    async def on_delta(text: str) -> None:
        pieces.append(text)

    with pytest.raises((InvalidResponseError, LLMConnectionError)):
        await complete_with_fallback(_req(), _ep(primary), [(_ep(secondary, "testalt"), None)], retry=FAST,
                                     on_delta=on_delta)
    assert pieces == ["half"]
    assert secondary.requests == []


# -- local (in-process) backends and the registry --------------------------------------------------

async def test_local_backend_dispatch() -> None:
    endpoint = Endpoint(backend="testlocal", base_url="")
    result = await complete(_req(), endpoint)
    assert (result.text, result.backend) == ("local:hi", "testlocal")
    assert [d.text async for d in stream(_req(), endpoint)] == ["a", "b", "c"]


async def test_local_backend_deadline() -> None:
    registry.get_backend("testlocal").delay = 3
    start = time.monotonic()
    with pytest.raises(LLMTimeoutError, match=r"0\.3 s"):
        await complete(_req(timeout=0.3), Endpoint(backend="testlocal", base_url=""))
    assert time.monotonic() - start < 0.8


async def test_unknown_backend_lists_valid_names() -> None:
    with pytest.raises(UnknownBackendError) as info:
        await complete(_req(), Endpoint(backend="opneai", base_url="http://127.0.0.1:9"))
    message = str(info.value)
    assert "did you mean 'openai'" in message
    for name in ("ollama", "openai", "anthropic", "google", "cohere", "mistral", "together", "perplexity",
                 "groq", "deepseek", "gguf"):
        assert name in message
    assert isinstance(info.value, LookupError)


def test_declarations_match_the_seed() -> None:
    table = {name: (info.env_var, info.default_url) for name, info in registry.BACKENDS.items()}
    assert table == {
        "ollama": (None, "http://localhost:11434"),
        "openai": ("OPENAI_API_KEY", "https://api.openai.com"),
        "anthropic": ("ANTHROPIC_API_KEY", "https://api.anthropic.com"),
        "google": ("GOOGLE_API_KEY", "https://generativelanguage.googleapis.com"),
        "cohere": ("COHERE_API_KEY", "https://api.cohere.ai"),
        "mistral": ("MISTRAL_API_KEY", "https://api.mistral.ai"),
        "together": ("TOGETHER_API_KEY", "https://api.together.xyz"),
        "perplexity": ("PERPLEXITY_API_KEY", "https://api.perplexity.ai"),
        "groq": ("GROQ_API_KEY", "https://api.groq.com"),
        "deepseek": ("DEEPSEEK_API_KEY", "https://api.deepseek.com"),
        "gguf": (None, ""),
    }


def test_importing_kdeps_llm_is_cheap() -> None:
    code = ("import sys, kdeps.llm as l; "
            "assert 'aiohttp' not in sys.modules, 'aiohttp'; "
            "assert not any(m.startswith('kdeps.llm.backends.') for m in sys.modules), 'backends'; "
            "assert l.ChatRequest and l.AuthError; "
            "l.complete; assert 'kdeps.llm.client' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_public_surface() -> None:
    import kdeps.llm as llm

    assert llm.complete is client.complete and llm.stream is client.stream
    assert llm.RetryPolicy is RetryPolicy and llm.complete_with_fallback is complete_with_fallback
