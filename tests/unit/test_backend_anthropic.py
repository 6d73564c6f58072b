"""Anthropic backend against the strict Messages API fake, through the real client and transport."""

from __future__ import annotations

import base64
import json
import time

import pytest

from kdeps.llm import client, transport
from kdeps.llm.backends.anthropic import AnthropicBackend
from kdeps.llm.client import RetryPolicy
from kdeps.llm.errors import (
    AuthError,
    BadRequestError,
    InvalidResponseError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
)
from kdeps.llm.types import ChatRequest, Endpoint, ImagePart, Message, ToolCall, ToolSpec
from tests.fakes.anthropic import KEY, AnthropicFake, error_event, events, message
from tests.fakes.base import json_reply, stream_reply
from tests.unit.backend_harness import ONCE, Harness, shared_fake

MODEL = "claude-3-5-sonnet-20241022"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
WEATHER = ToolSpec("weather", "Weather for a city",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


server, fake = shared_fake(AnthropicFake)
H = Harness("anthropic", MODEL, KEY)
req, at, ask, collect = H.req, H.at, H.ask, H.collect


# -- request shape ------------------------------------------------------------------------------------

async def test_plain_chat_request_and_answer(fake: AnthropicFake) -> None:
    fake.reply("Hello there", usage=(21, 4))
    result = await ask(fake, req("What is AI?"))
    rec = fake.last
    assert rec.path == "/v1/messages"
    assert rec.header("x-api-key") == KEY
    assert rec.header("anthropic-version") == "2023-06-01"
    assert rec.json == {"model": MODEL, "max_tokens": 4096,
                        "messages": [{"role": "user", "content": "What is AI?"}]}
    assert (result.text, result.finish_reason, result.model) == ("Hello there", "stop", MODEL)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (21, 4)


async def test_system_and_scenario_go_to_top_level_system(fake: AnthropicFake) -> None:
    request = ChatRequest(model=MODEL, system="Be brief.", timeout=10, messages=[
        Message("system", "Answer in French."), Message("user", "Hi"), Message("assistant", "Bonjour"),
        Message("user", "How are you?")])
    await ask(fake, request)
    body = fake.last.json
    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


async def test_params_and_max_tokens_rule(fake: AnthropicFake) -> None:
    await ask(fake, req(temperature=0.2, top_p=0.9, max_tokens=300, frequency_penalty=0.5))
    body = fake.last.json
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.2, 0.9, 300)
    assert "frequency_penalty" not in body
    await ask(fake, req(context_length=2048))
    assert fake.last.json["max_tokens"] == 2048
    await ask(fake, req(context_length=128000))
    assert fake.last.json["max_tokens"] == 4096
    assert "temperature" not in fake.last.json


async def test_temperature_is_passed_through_and_api_answer_shown(fake: AnthropicFake) -> None:
    with pytest.raises(BadRequestError, match="temperature"):
        await ask(fake, req(temperature=1.5))


async def test_json_mode_forces_a_tool_and_returns_its_input_as_text(fake: AnthropicFake) -> None:
    fake.reply(tool_calls=[("json_answer", {"answer": "42", "confidence": 0.9})])
    result = await ask(fake, req(json_mode=True, json_keys=["answer", "confidence"]))
    body = fake.last.json
    assert body["tool_choice"] == {"type": "tool", "name": "json_answer"}
    schema = body["tools"][0]["input_schema"]
    assert schema["required"] == ["answer", "confidence"] and schema["type"] == "object"
    assert json.loads(result.text) == {"answer": "42", "confidence": 0.9}
    assert result.tool_calls == [] and result.finish_reason == "stop"


async def test_json_mode_with_schema_and_with_user_tools(fake: AnthropicFake) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    await ask(fake, req(json_mode=True, json_schema=schema))
    assert fake.last.json["tools"][0]["input_schema"] == schema
    await ask(fake, req(json_mode=True, tools=[WEATHER]))
    body = fake.last.json
    assert "tool_choice" not in body and [t["name"] for t in body["tools"]] == ["weather"]


async def test_tool_definitions_and_tool_use_parsing(fake: AnthropicFake) -> None:
    fake.reply("Let me check.", tool_calls=[("weather", {"city": "Paris"}), ("weather", {"city": "Oslo"})])
    result = await ask(fake, req(tools=[WEATHER]))
    assert fake.last.json["tools"] == [{"name": "weather", "description": "Weather for a city",
                                        "input_schema": WEATHER.parameters}]
    assert result.finish_reason == "tool_calls" and result.text == "Let me check."
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("weather", {"city": "Paris"}),
                                                                   ("weather", {"city": "Oslo"})]
    assert all(c.id.startswith("toolu_") for c in result.tool_calls)


async def test_tool_results_replayed_in_one_user_turn(fake: AnthropicFake) -> None:
    calls = [ToolCall("toolu_a", "weather", {"city": "Paris"}), ToolCall("toolu_b", "weather", {"city": "X"})]
    request = ChatRequest(model=MODEL, tools=[WEATHER], timeout=10, messages=[
        Message("user", "Weather?"), Message("assistant", "", tool_calls=calls),
        Message("tool", "sunny", tool_call_id="toolu_a", name="weather"),
        Message("tool", "unknown city", tool_call_id="toolu_b", name="weather", is_error=True)])
    fake.reply("Paris is sunny.")
    result = await ask(fake, request)  # the fake checks each tool_result answers a tool_use
    assert result.text == "Paris is sunny."
    msgs = fake.last.json["messages"]
    assert msgs[1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_b", "name": "weather", "input": {"city": "X"}}]}
    assert msgs[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_b", "content": "unknown city", "is_error": True}]}


async def test_unanswered_tool_result_is_rejected_like_the_api(fake: AnthropicFake) -> None:
    request = ChatRequest(model=MODEL, timeout=10, messages=[
        Message("user", "Weather?"), Message("tool", "sunny", tool_call_id="toolu_zz")])
    with pytest.raises(BadRequestError, match="tool_use_id"):
        await ask(fake, request)


async def test_images_are_base64_blocks(fake: AnthropicFake) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"\x01" * 8
    request = ChatRequest(model=MODEL, timeout=10, messages=[Message(
        "user", "What is this?", images=[ImagePart(PNG, "image/png"), ImagePart(jpeg, "image/jpeg")])])
    await ask(fake, request)
    content = fake.last.json["messages"][0]["content"]
    assert [b["type"] for b in content] == ["image", "image", "text"]
    assert content[0]["source"]["media_type"] == "image/png"
    assert base64.b64decode(content[0]["source"]["data"]) == PNG
    assert base64.b64decode(content[1]["source"]["data"]) == jpeg


# -- errors -------------------------------------------------------------------------------------------

async def test_wrong_key_is_auth_error_with_provider_message(fake: AnthropicFake) -> None:
    with pytest.raises(AuthError) as info:
        await ask(fake, req(), key="sk-ant-wrong")
    assert info.value.upstream_status == 401 and "invalid x-api-key" in info.value.message
    assert "sk-ant-wrong" not in str(info.value)


async def test_missing_key_reaches_the_fake_as_401() -> None:
    backend = AnthropicBackend()
    with AnthropicFake() as fake:
        call = backend.build(req(), Endpoint("anthropic", fake.url, None))
        assert "x-api-key" not in call.headers
        status, headers, data, text = await transport.post_json(call, time.monotonic() + 5)
        await transport.aclose()
    err = backend.error(status, data, text, headers)
    assert isinstance(err, AuthError) and "x-api-key header is required" in err.message


async def test_missing_max_tokens_answer_maps_to_bad_request(fake: AnthropicFake) -> None:
    backend = AnthropicBackend()
    call = backend.build(req(), at(fake))
    del call.body["max_tokens"]
    status, headers, data, text = await transport.post_json(call, time.monotonic() + 5)
    await transport.aclose()
    err = backend.error(status, data, text, headers)
    assert status == 400 and isinstance(err, BadRequestError)
    assert "max_tokens: Field required" in err.message and "invalid_request_error" in err.message


async def test_wrong_path_is_not_found(fake: AnthropicFake) -> None:
    with pytest.raises(NotFoundError):
        await ask(fake, req(), path="/proxy")
    assert fake.last.path == "/proxy/v1/messages"


async def test_base_url_with_v1_suffix_is_not_doubled(fake: AnthropicFake) -> None:
    await ask(fake, req(), path="/v1")
    assert fake.last.path == "/v1/messages"


async def test_rate_limit_carries_retry_after(fake: AnthropicFake) -> None:
    fake.fail(429, "Number of requests has exceeded your rate limit", headers={"retry-after": "7"})
    with pytest.raises(RateLimitError) as info:
        await ask(fake, req())
    assert info.value.retry_after == 7 and info.value.retryable
    assert "rate limit" in info.value.message


@pytest.mark.parametrize("status", [500, 529])
async def test_server_errors_are_retryable_upstream_errors(fake: AnthropicFake, status: int) -> None:
    fake.fail(status, "Overloaded" if status == 529 else "Internal server error")
    with pytest.raises(UpstreamError) as info:
        await ask(fake, req())
    assert info.value.upstream_status == status and info.value.retryable


async def test_overloaded_then_success_is_retried(fake: AnthropicFake) -> None:
    fake.fail(529, "Overloaded").reply("second time lucky")
    result = await client.complete(req(), at(fake), retry=RetryPolicy(max_attempts=2, initial_delay=0.01))
    assert (result.text, result.attempts, len(fake.requests)) == ("second time lucky", 2, 2)


async def test_malformed_answer_is_invalid_response(fake: AnthropicFake) -> None:
    fake.push(json_reply({"type": "message", "content": "nope"}))
    with pytest.raises(InvalidResponseError):
        await ask(fake, req())


# -- streaming ----------------------------------------------------------------------------------------

async def test_stream_text_usage_and_terminator(fake: AnthropicFake) -> None:
    fake.reply("Streaming works fine", usage=(30, 9), pieces=4)
    deltas = await collect(fake, req())
    assert fake.last.json["stream"] is True
    texts = [d.text for d in deltas if d.text]
    assert len(texts) == 4 and "".join(texts) == "Streaming works fine"
    last = deltas[-1]
    assert last.finish_reason == "stop" and (last.usage.input_tokens, last.usage.output_tokens) == (30, 9)


async def test_stream_assembles_tool_calls(fake: AnthropicFake) -> None:
    fake.reply("Checking", tool_calls=[("weather", {"city": "Paris", "days": [1, 2]})], pieces=5)
    deltas = await collect(fake, req(tools=[WEATHER]))
    calls = [c for d in deltas for c in d.tool_calls]
    assert [(c.name, c.arguments) for c in calls] == [("weather", {"city": "Paris", "days": [1, 2]})]
    assert deltas[-1].finish_reason == "tool_calls"


async def test_stream_json_mode_streams_the_json_as_text(fake: AnthropicFake) -> None:
    fake.reply(tool_calls=[("json_answer", {"answer": "yes"})])
    deltas = await collect(fake, req(json_mode=True, json_keys=["answer"]))
    assert json.loads("".join(d.text for d in deltas)) == {"answer": "yes"}
    assert not any(d.tool_calls for d in deltas) and deltas[-1].finish_reason == "stop"


async def test_cut_stream_is_invalid_response(fake: AnthropicFake) -> None:
    fake.reply("a long answer that never ends", pieces=5, cut_after=5)
    with pytest.raises(InvalidResponseError):
        await collect(fake, req())


async def test_stream_without_message_stop_is_invalid_response(fake: AnthropicFake) -> None:
    fake.push(stream_reply(events(message("unfinished"))[:-1]))
    with pytest.raises(InvalidResponseError, match="message_stop"):
        await collect(fake, req())


async def test_error_event_mid_stream(fake: AnthropicFake) -> None:
    head = events(message("partial answer"))[:4]
    fake.push(stream_reply([*head, error_event(529, "Overloaded")]))
    seen: list[str] = []
    with pytest.raises(UpstreamError, match="Overloaded") as info:
        async for delta in client.stream(req(), at(fake), retry=ONCE):
            seen.append(delta.text)
    assert info.value.upstream_status == 529 and seen


async def test_stream_error_status_before_first_byte(fake: AnthropicFake) -> None:
    fake.fail(401, "invalid x-api-key")
    with pytest.raises(AuthError):
        await collect(fake, req())
