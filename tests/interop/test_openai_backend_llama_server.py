"""The `openai` backend with `baseUrl` at a real OpenAI-compatible server (llama_cpp.server). The 135M
model's knowledge is never asserted: shapes, token limits and finish reasons are."""

from __future__ import annotations

import json

import pytest

from kdeps.llm import client
from kdeps.llm.client import RetryPolicy
from kdeps.llm.types import ChatRequest, Endpoint, Message, ToolCall
from tests.interop.conftest import ALIAS, LlamaServer

pytestmark = pytest.mark.local_model
ONCE = RetryPolicy(max_attempts=1)


def endpoint(server: LlamaServer) -> Endpoint:
    return Endpoint("openai", f"{server.url}/v1", "sk-no-key-needed")


def ask(text: str, **kw: object) -> ChatRequest:
    return ChatRequest(model=ALIAS, messages=[Message("user", text)], timeout=60, **kw)  # type: ignore[arg-type]


async def test_plain(llama_server: LlamaServer) -> None:
    result = await client.complete(ask("Say hello.", max_tokens=16), endpoint(llama_server), retry=ONCE)
    assert isinstance(result.text, str) and result.text.strip()
    assert result.finish_reason in ("stop", "length")
    assert 0 < result.usage.output_tokens <= 16 and result.usage.input_tokens > 0


async def test_max_tokens_is_honoured(llama_server: LlamaServer) -> None:
    result = await client.complete(ask("Write a long story about the sea.", max_tokens=5),
                                   endpoint(llama_server), retry=ONCE)
    assert result.usage.output_tokens <= 5 and result.finish_reason == "length"


async def test_json_mode(llama_server: LlamaServer) -> None:
    result = await client.complete(ask("Describe a cat.", json_mode=True, max_tokens=64, temperature=0),
                                   endpoint(llama_server), retry=ONCE)
    assert isinstance(json.loads(result.text), dict)


async def test_sse_stream(llama_server: LlamaServer) -> None:
    deltas = [d async for d in client.stream(ask("Count to five.", max_tokens=8), endpoint(llama_server),
                                             retry=ONCE)]
    assert "".join(d.text for d in deltas).strip()
    assert deltas[-1].finish_reason in ("stop", "length")
    assert deltas[-1].usage is not None  # this server sends no usage in the stream: zeros, not a failure


async def test_tool_turns_replayed(llama_server: LlamaServer) -> None:
    call = ToolCall("call_1", "get_weather", {"city": "Paris"})
    request = ChatRequest(model=ALIAS, timeout=60, max_tokens=8, messages=[
        Message("user", "Weather in Paris?"), Message("assistant", "", tool_calls=[call]),
        Message("tool", "sunny, 21C", tool_call_id=call.id), Message("user", "So?")])
    result = await client.complete(request, endpoint(llama_server), retry=ONCE)  # null content was a 500
    assert result.finish_reason in ("stop", "length")
