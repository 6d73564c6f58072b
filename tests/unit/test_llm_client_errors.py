"""What the client says when a call fails, and which failures it does not retry in vain: the `openai`
backend against the fake of an OpenAI-compatible (llama.cpp-style) server, through the real client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kdeps.llm import client
from kdeps.llm.client import RetryPolicy
from kdeps.llm.errors import BadRequestError, InvalidResponseError, NotFoundError, UpstreamError
from kdeps.llm.types import ChatRequest, Endpoint, Message, ToolSpec
from tests.fakes.base import json_reply
from tests.fakes.openai_compat import OpenAICompatFake

FAST = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.05)
TOOL = ToolSpec("lookup", "Look a word up", {"type": "object", "properties": {"word": {"type": "string"}}})


@pytest.fixture
def server() -> Iterator[OpenAICompatFake]:
    with OpenAICompatFake("llamacpp", api_key=None) as fake:
        yield fake


def ask(**kw: object) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message("user", "hi")], timeout=10, **kw)  # type: ignore[arg-type]


async def test_http_error_names_the_redacted_url(server: OpenAICompatFake) -> None:
    base = server.url + "/wrong?token=abc123"
    with pytest.raises(NotFoundError) as caught:
        await client.complete(ask(), Endpoint("openai", base, "sk-local"), retry=FAST)
    message = str(caught.value)
    assert f"(POST {server.url}/wrong/v1/chat/completions)" in message
    assert "abc123" not in message


async def test_final_error_mentions_the_first_failure(server: OpenAICompatFake) -> None:
    server.fail(503, "model is loading")
    server.fail(400, "prompt too long")
    with pytest.raises(BadRequestError) as caught:
        await client.complete(ask(), Endpoint("openai", server.url, "sk-local"), retry=FAST)
    message = str(caught.value)
    assert "prompt too long" in message and "first of 2 attempts" in message and "model is loading" in message


async def test_validation_500_is_retried_once(server: OpenAICompatFake) -> None:
    for _ in range(3):
        server.fail(500, "2 validation errors: Input should be a valid string")
    with pytest.raises(UpstreamError, match="same on all 2 attempts"):
        await client.complete(ask(), Endpoint("openai", server.url, "sk-local"), retry=FAST)
    assert len(server.requests) == 2


def _bad_tool_call() -> object:
    return json_reply({"model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "",
        "tool_calls": [{"id": "c1", "type": "function",
                        "function": {"name": "lookup", "arguments": "{'w"}}]}}]})


@pytest.mark.parametrize(("temperature", "calls"), [(0, 2), (None, 3)])
async def test_invalid_tool_json_at_temperature_0_is_retried_once(
        server: OpenAICompatFake, temperature: float | None, calls: int) -> None:
    for _ in range(3):
        server.push(_bad_tool_call())  # type: ignore[arg-type]
    with pytest.raises(InvalidResponseError, match="not valid JSON"):
        await client.complete(ask(tools=[TOOL], temperature=temperature),
                              Endpoint("openai", server.url, "sk-local"), retry=FAST)
    assert len(server.requests) == calls
    assert json.loads(server.last.body)["tools"][0]["function"]["name"] == "lookup"
