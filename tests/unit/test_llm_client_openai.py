"""The client with real backends (OpenAI-compatible) against the strict OpenAI-compatible fake."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from kdeps.llm import transport
from kdeps.llm.client import RetryPolicy, complete, complete_with_fallback, stream
from kdeps.llm.errors import AuthError
from kdeps.llm.types import ChatRequest, Endpoint, Message
from tests.fakes.openai_compat import DEFAULT_KEY, OpenAICompatFake

RETRY = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=2.0)


@pytest.fixture(scope="module")
def openai() -> Iterator[OpenAICompatFake]:
    with OpenAICompatFake("openai") as fake:
        yield fake


@pytest.fixture(scope="module")
def groq() -> Iterator[OpenAICompatFake]:
    with OpenAICompatFake("groq") as fake:
        yield fake


@pytest.fixture(autouse=True)
async def _clean(openai: OpenAICompatFake, groq: OpenAICompatFake) -> AsyncIterator[None]:
    openai.reset()
    groq.reset()
    yield
    await transport.aclose()


def _req(model: str = "gpt-4o") -> ChatRequest:
    return ChatRequest(model=model, messages=[Message(role="user", content="What is AI?")], timeout=10)


def _ep(fake: OpenAICompatFake, backend: str = "openai", key: str = DEFAULT_KEY) -> Endpoint:
    return Endpoint(backend=backend, base_url=fake.url, api_key=key)


async def test_complete_and_stream(openai: OpenAICompatFake) -> None:
    openai.say("Artificial intelligence.", usage=(12, 3))
    result = await complete(_req(), _ep(openai))
    assert (result.text, result.backend, result.attempts) == ("Artificial intelligence.", "openai", 1)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (12, 3)
    openai.say("Streamed answer here.", pieces=4)
    deltas = [d async for d in stream(_req(), _ep(openai))]
    assert "".join(d.text for d in deltas) == "Streamed answer here."
    assert len([d for d in deltas if d.text]) == 4


async def test_retry_after_ms_honoured(openai: OpenAICompatFake) -> None:
    openai.fail(429, "Rate limit reached", headers={"retry-after-ms": "300"})
    openai.say("after the wait")
    start = time.monotonic()
    result = await complete(_req(), _ep(openai), retry=RETRY)
    assert time.monotonic() - start >= 0.28
    assert (result.text, result.attempts, len(openai.requests)) == ("after the wait", 2, 2)


async def test_fallback_to_another_provider(openai: OpenAICompatFake, groq: OpenAICompatFake) -> None:
    for _ in range(3):
        openai.fail(500, "The server had an error while processing your request.")
    groq.say("groq here")
    result = await complete_with_fallback(_req(), _ep(openai), [(_ep(groq, "groq"), "llama-3.1-8b-instant")],
                                          retry=RETRY)
    assert (result.text, result.backend, result.attempts) == ("groq here", "groq", 4)
    assert groq.last.json["model"] == "llama-3.1-8b-instant"
    assert groq.last.path == "/openai/v1/chat/completions"


async def test_wrong_key_no_retry_no_fallback_no_leak(openai: OpenAICompatFake, groq: OpenAICompatFake,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-abcdef0123456789"
    with pytest.raises(AuthError, match="Incorrect API key") as info:
        await complete_with_fallback(_req(), _ep(openai, key=wrong), [_ep(groq, "groq")], retry=RETRY)
    assert info.value.upstream_status == 401
    assert len(openai.requests) == 1 and groq.requests == []
    for text in [str(info.value), *(r.getMessage() for r in caplog.records)]:
        assert wrong not in text
