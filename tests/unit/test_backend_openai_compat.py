"""The OpenAI-compatible backends (openai, mistral, together, perplexity, groq, deepseek, Azure) against
the strict fake, through the real transport."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kdeps.llm import client, transport
from kdeps.llm.backends.openai_compat import (
    AZURE_API_VERSION,
    BACKENDS,
    DeepSeekBackend,
    MistralBackend,
    OpenAIBackend,
    OpenAICompatBackend,
)
from kdeps.llm.errors import (
    AuthError,
    BadRequestError,
    InvalidResponseError,
    LLMConnectionError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
)
from kdeps.llm.types import (
    ChatRequest,
    ChatResult,
    Endpoint,
    ImagePart,
    Message,
    StreamDelta,
    ToolCall,
    ToolSpec,
)
from tests.fakes.base import drop, json_reply, slow, stream_reply, text_reply, truncated
from tests.fakes.openai_compat import DEFAULT_KEY, OpenAICompatFake

PROVIDERS = ["openai", "mistral", "together", "perplexity", "groq", "deepseek"]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
WEATHER = ToolSpec("get_weather", "Weather for a city",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture(params=PROVIDERS)
def env(request: pytest.FixtureRequest) -> Iterator[tuple[OpenAICompatBackend, OpenAICompatFake, Endpoint]]:
    name = request.param
    with OpenAICompatFake(name) as fake:
        yield BACKENDS[name](), fake, Endpoint(name, fake.url, DEFAULT_KEY)


async def chat(backend: OpenAICompatBackend, req: ChatRequest, ep: Endpoint) -> ChatResult:
    """What the client does for one non-streaming attempt."""
    call = backend.build(req, ep)
    status, headers, data, text = await transport.post_json(call, time.monotonic() + 10, backend=backend.name)
    if status >= 400:
        raise backend.error(status, data, text, headers)
    return backend.parse(data)


async def stream(backend: OpenAICompatBackend, req: ChatRequest, ep: Endpoint) -> list[StreamDelta]:
    call = backend.build(req, ep, stream=True)
    parser = backend.stream_parser()
    out: list[StreamDelta] = []
    async with transport.open_stream(call, time.monotonic() + 10, backend=backend.name) as resp:
        if resp.status >= 400:
            data, text = await resp.read_body()
            raise backend.error(resp.status, data, text, resp.headers)
        async for event, data in resp.events(backend.stream_format):
            out += parser.feed(event, data)
            if parser.done():
                break
    out += parser.finish()
    return out


def ask(text: str = "Hello?", **kw: Any) -> ChatRequest:
    return ChatRequest(model=kw.pop("model", "some-model"), messages=[Message("user", text)], **kw)


# -- plain chat --------------------------------------------------------------------------------------------
async def test_plain_chat(env: Any) -> None:
    backend, fake, ep = env
    fake.say("Hi there", usage=(13, 4))
    result = await chat(backend, ask(), ep)
    assert (result.text, result.finish_reason, result.model) == ("Hi there", "stop", "some-model")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (13, 4)
    rec = fake.last
    assert rec.path == {"perplexity": "/chat/completions", "deepseek": "/chat/completions",
                        "groq": "/openai/v1/chat/completions"}.get(backend.name, "/v1/chat/completions")
    assert rec.header("authorization") == f"Bearer {DEFAULT_KEY}"
    assert rec.json == {"model": "some-model", "messages": [{"role": "user", "content": "Hello?"}]}


async def test_system_and_scenario(env: Any) -> None:
    backend, fake, ep = env
    req = ChatRequest(model="m", system="Be brief.", messages=[
        Message("user", "Hi"), Message("assistant", "Hello!"), Message("user", "What is AI?")])
    await chat(backend, req, ep)
    assert fake.last.json["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "What is AI?"}]


async def test_parameters_mapping(env: Any) -> None:
    backend, fake, ep = env
    await chat(backend, ask(temperature=0.2, top_p=0.9, max_tokens=64, frequency_penalty=0.5,
                            presence_penalty=-0.5, context_length=4096), ep)
    body = fake.last.json
    assert body["max_tokens"] == 64  # openai at a local baseUrl is "any OpenAI-compatible server"
    assert "max_completion_tokens" not in body
    assert {k: body[k] for k in ("temperature", "top_p", "frequency_penalty", "presence_penalty")} == {
        "temperature": 0.2, "top_p": 0.9, "frequency_penalty": 0.5, "presence_penalty": -0.5}
    assert "num_ctx" not in body and "context_length" not in body


async def test_json_mode(env: Any) -> None:
    backend, fake, ep = env
    fake.say('{"answer": 42}')
    result = await chat(backend, ask("Give me the answer.", json_mode=True, json_keys=["answer"]), ep)
    assert json.loads(result.text) == {"answer": 42}
    body = fake.last.json
    if backend.name == "perplexity":  # no json_object mode there: a schema makes the server enforce JSON
        assert body["response_format"] == {"type": "json_schema", "json_schema": {"schema": {
            "type": "object", "properties": {"answer": {}}, "required": ["answer"]}}}
    else:
        assert body["response_format"] == {"type": "json_object"}
    assert "json" in json.dumps(body["messages"]).lower()  # OpenAI/DeepSeek reject json_object otherwise


async def test_json_schema(env: Any) -> None:
    backend, fake, ep = env
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    await chat(backend, ask("Answer in JSON.", json_mode=True, json_schema=schema), ep)
    fmt = fake.last.json["response_format"]
    if backend.name == "deepseek":
        assert fmt == {"type": "json_object"}
    elif backend.name == "perplexity":
        assert fmt == {"type": "json_schema", "json_schema": {"schema": schema}}
    else:
        assert fmt == {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


async def test_json_word_is_not_added_twice(env: Any) -> None:
    backend, fake, ep = env
    await chat(backend, ask("Reply as JSON please", json_mode=True), ep)
    assert fake.last.json["messages"] == [{"role": "user", "content": "Reply as JSON please"}]


# -- tools -----------------------------------------------------------------------------------------------
async def test_tool_definitions_and_calls(env: Any) -> None:
    backend, fake, ep = env
    fake.call_tools(("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"}))
    result = await chat(backend, ask("Weather?", tools=[WEATHER]), ep)
    assert fake.last.json["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city", "parameters": WEATHER.parameters}}]
    assert result.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})]
    assert len({c.id for c in result.tool_calls}) == 2


async def test_tool_result_replay(env: Any) -> None:
    backend, fake, ep = env
    fake.call_tools(("get_weather", {"city": "Paris"}))
    first = await chat(backend, ask("Weather in Paris?", tools=[WEATHER]), ep)
    call = first.tool_calls[0]
    fake.say("It is sunny in Paris.")
    req = ChatRequest(model="m", tools=[WEATHER], messages=[
        Message("user", "Weather in Paris?"), Message("assistant", "", tool_calls=[call]),
        Message("tool", "sunny, 21C", tool_call_id=call.id, name="get_weather"),
        Message("user", "Thanks, so?")])
    result = await chat(backend, req, ep)  # the fake checks the tool message answers the assistant's call
    assert result.text == "It is sunny in Paris."
    sent = fake.last.json["messages"]
    assert sent[1]["tool_calls"] == [{"id": call.id, "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    assert isinstance(sent[1]["content"], str)  # never null (llama.cpp servers answer 500 to it)
    if backend.name == "perplexity":
        assert sent[1]["content"].strip()  # Perplexity: assistant messages must have content
    assert sent[2] == {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}


async def test_mistral_tool_ids_become_nine_characters() -> None:
    with OpenAICompatFake("mistral") as fake:
        backend, ep = MistralBackend(), Endpoint("mistral", fake.url, DEFAULT_KEY)
        foreign = ToolCall("call_from_another_backend_42", "get_weather", {"city": "Rome"})
        req = ChatRequest(model="m", messages=[
            Message("user", "Weather?", name="alice"), Message("assistant", "", tool_calls=[foreign]),
            Message("tool", "rainy", tool_call_id=foreign.id, name="get_weather", is_error=False)])
        await chat(backend, req, ep)  # the fake rejects ids that are not 9 alphanumerics, and `name`
        sent = fake.last.json["messages"]
        new_id = sent[1]["tool_calls"][0]["id"]
        assert len(new_id) == 9 and new_id.isalnum() and sent[2]["tool_call_id"] == new_id
        assert "name" not in sent[0]


async def test_mistral_keeps_its_own_ids_and_generates_missing_ones() -> None:
    backend = MistralBackend()
    result = backend.parse({"choices": [{"message": {"role": "assistant", "content": "", "tool_calls": [
        {"id": "AbCdE1234", "function": {"name": "f", "arguments": {"x": 1}}},
        {"function": {"name": "g", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}]})
    assert result.tool_calls[0].id == "AbCdE1234" and result.tool_calls[0].arguments == {"x": 1}
    assert len(result.tool_calls[1].id) == 9 and result.tool_calls[1].id.isalnum()


async def test_failed_tool_result_is_marked(env: Any) -> None:
    backend, fake, ep = env
    call = ToolCall("AbCdE1234", "get_weather", {"city": "X"})
    req = ChatRequest(model="m", messages=[
        Message("user", "Weather?"), Message("assistant", "", tool_calls=[call]),
        Message("tool", "city not found", tool_call_id=call.id, is_error=True), Message("user", "Well?")])
    await chat(backend, req, ep)
    assert fake.last.json["messages"][2]["content"] == "Error: city not found"


async def test_invalid_tool_arguments_are_an_invalid_response(env: Any) -> None:
    backend, fake, ep = env
    fake.push(json_reply({"model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Par'}}]}}]}))
    with pytest.raises(InvalidResponseError, match="get_weather"):
        await chat(backend, ask(tools=[WEATHER]), ep)


# -- images ----------------------------------------------------------------------------------------------
async def test_images_as_data_urls(env: Any) -> None:
    backend, fake, ep = env
    image = ImagePart(PNG, "image/png")
    req = ChatRequest(model="m", messages=[Message("user", "What is this?", images=[image])])
    if backend.name == "deepseek":
        with pytest.raises(BadRequestError, match="does not accept images"):
            await client.complete(req, ep)
        assert not DeepSeekBackend.declaration.images and fake.requests == []
        return
    await chat(backend, req, ep)
    content = fake.last.json["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "What is this?"}
    url = content[1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == PNG


# -- Perplexity alternation ------------------------------------------------------------------------------
async def test_perplexity_merges_consecutive_turns() -> None:
    with OpenAICompatFake("perplexity") as fake:
        backend = BACKENDS["perplexity"]()
        ep = Endpoint("perplexity", fake.url, DEFAULT_KEY)
        req = ChatRequest(model="sonar", system="Be brief.", messages=[
            Message("system", "Cite sources."), Message("user", "Hi"), Message("user", "What is AI?"),
            Message("assistant", "A field."), Message("assistant", "Of CS."), Message("user", "More?")])
        await chat(backend, req, ep)  # the fake answers 400 invalid_message unless roles alternate
        assert fake.last.json["messages"] == [
            {"role": "system", "content": "Be brief.\n\nCite sources."},
            {"role": "user", "content": "Hi\n\nWhat is AI?"},
            {"role": "assistant", "content": "A field.\n\nOf CS."}, {"role": "user", "content": "More?"}]


async def test_perplexity_rejects_non_alternating_raw_request() -> None:
    with OpenAICompatFake("perplexity") as fake:
        backend = BACKENDS["perplexity"]()
        call = backend.build(ask(), Endpoint("perplexity", fake.url, DEFAULT_KEY))
        call.body["messages"] = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
        with pytest.raises(BadRequestError, match="alternating"):
            status, headers, data, text = await transport.post_json(call, time.monotonic() + 5)
            raise backend.error(status, data, text, headers)


def test_perplexity_strips_reasoning() -> None:
    result = BACKENDS["perplexity"]().parse({"choices": [{"message": {
        "content": "<think>let me see</think>\n{\"a\": 1}"}, "finish_reason": "stop"}]})
    assert result.text == '{"a": 1}'


# -- errors ----------------------------------------------------------------------------------------------
async def test_wrong_key_is_an_auth_error(env: Any) -> None:
    backend, fake, _ = env
    with pytest.raises(AuthError) as info:
        await chat(backend, ask(), Endpoint(backend.name, fake.url, "sk-wrong"))
    assert info.value.upstream_status == 401
    assert "sk-wrong" not in str(info.value)
    assert ("Unauthorized" if backend.name == "mistral" else "Incorrect API key") in info.value.message


async def test_missing_key_is_an_auth_error(env: Any) -> None:
    backend, fake, _ = env
    with pytest.raises(AuthError, match="Unauthorized" if backend.name == "mistral" else "API key"):
        await chat(backend, ask(), Endpoint(backend.name, fake.url, None))


async def test_unknown_model_is_not_found() -> None:
    with OpenAICompatFake("openai", models={"gpt-4o"}) as fake:
        ep = Endpoint("openai", fake.url, DEFAULT_KEY)
        with pytest.raises(NotFoundError, match="`gpt-9` does not exist"):
            await chat(OpenAIBackend(), ask(model="gpt-9"), ep)
        assert (await chat(OpenAIBackend(), ask(model="gpt-4o"), ep)).text == "ok"


async def test_wrong_path_is_not_found(env: Any) -> None:
    backend, fake, _ = env
    with pytest.raises(NotFoundError):
        await chat(backend, ask(), Endpoint(backend.name, fake.url + "/nope/v2/chat/completions", "k"))


async def test_bad_request_shows_provider_message(env: Any) -> None:
    backend, fake, ep = env
    fake.fail(400, "Invalid value for 'temperature': must be <= 2.")
    with pytest.raises(BadRequestError) as info:
        await chat(backend, ask(temperature=5), ep)
    assert info.value.message == "Invalid value for 'temperature': must be <= 2."
    assert not info.value.retryable


async def test_mistral_422_unknown_field() -> None:
    with OpenAICompatFake("mistral") as fake:
        backend = MistralBackend()
        call = backend.build(ask(), Endpoint("mistral", fake.url, DEFAULT_KEY))
        call.body["seed"] = 1  # Mistral calls it random_seed
        call.body["messages"][0]["name"] = "alice"
        status, headers, data, text = await transport.post_json(call, time.monotonic() + 5)
        err = backend.error(status, data, text, headers)
        assert status == 422 and isinstance(err, BadRequestError)
        assert err.message == ("seed: Extra inputs are not permitted; "
                               "messages.0.user.name: Extra inputs are not permitted")


@pytest.mark.parametrize(("headers", "wait"), [({"Retry-After": "7"}, 7.0),
                                               ({"retry-after-ms": "250"}, 0.25)])
async def test_rate_limit_with_retry_after(env: Any, headers: dict[str, str], wait: float) -> None:
    backend, fake, ep = env
    fake.fail(429, "Rate limit reached for requests", headers=headers)
    with pytest.raises(RateLimitError) as info:
        await chat(backend, ask(), ep)
    assert info.value.retry_after == pytest.approx(wait)
    assert info.value.retryable and "Rate limit reached" in info.value.message


async def test_mistral_flat_rate_limit_body() -> None:
    with OpenAICompatFake("mistral") as fake:
        fake.fail(429, "Requests rate limit exceeded")
        with pytest.raises(RateLimitError, match="Requests rate limit exceeded"):
            await chat(MistralBackend(), ask(), Endpoint("mistral", fake.url, DEFAULT_KEY))


async def test_server_error_is_upstream(env: Any) -> None:
    backend, fake, ep = env
    fake.fail(500, "The server had an error while processing your request.")
    with pytest.raises(UpstreamError, match="server had an error") as info:
        await chat(backend, ask(), ep)
    assert info.value.upstream_status == 500 and info.value.retryable


async def test_broken_answers(env: Any) -> None:
    backend, fake, ep = env
    fake.push(drop(), truncated(json_reply({"choices": []})),
              text_reply('{"choices": [', content_type="application/json"),
              json_reply({"object": "chat.completion", "choices": []}))
    with pytest.raises(LLMConnectionError):
        await chat(backend, ask(), ep)
    for _ in range(3):
        with pytest.raises(InvalidResponseError):
            await chat(backend, ask(), ep)


async def test_slow_reply_hits_the_deadline() -> None:
    with OpenAICompatFake("openai") as fake:
        fake.push(slow(json_reply({}), 2.0))
        call = OpenAIBackend().build(ask(), Endpoint("openai", fake.url, DEFAULT_KEY))
        start = time.monotonic()
        with pytest.raises(Exception, match="within") as info:
            await transport.post_json(call, time.monotonic() + 0.3, backend="openai")
    assert type(info.value).__name__ == "LLMTimeoutError" and time.monotonic() - start < 1.5


# -- streaming -------------------------------------------------------------------------------------------
def _joined(deltas: list[StreamDelta]) -> tuple[str, StreamDelta]:
    return "".join(d.text for d in deltas), deltas[-1]


async def test_stream_text_and_usage(env: Any) -> None:
    backend, fake, ep = env
    fake.say("Streaming works fine.", usage=(21, 5), pieces=4)
    deltas = await stream(backend, ask(), ep)
    text, last = _joined(deltas)
    assert text == "Streaming works fine." and len([d for d in deltas if d.text]) >= 4
    assert last.finish_reason == "stop"
    assert last.usage is not None and (last.usage.input_tokens, last.usage.output_tokens) == (21, 5)
    body = fake.last.json
    assert body["stream"] is True
    assert ("stream_options" in body) == (backend.name in ("openai", "deepseek"))


async def test_stream_tool_call_fragments(env: Any) -> None:
    backend, fake, ep = env
    fake.call_tools(("get_weather", {"city": "Paris", "unit": "C"}), ("get_time", {"tz": "CET"}))
    deltas = await stream(backend, ask(tools=[WEATHER]), ep)
    last = deltas[-1]
    assert last.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in last.tool_calls] == [
        ("get_weather", {"city": "Paris", "unit": "C"}), ("get_time", {"tz": "CET"})]
    assert all(c.id for c in last.tool_calls)


async def test_stream_cut_mid_way(env: Any) -> None:
    backend, fake, ep = env
    fake.say("This answer will be cut.", pieces=5, cut_after=3)
    with pytest.raises(InvalidResponseError, match="cut"):
        await stream(backend, ask(), ep)


async def test_stream_without_done_marker(env: Any) -> None:
    backend, fake, ep = env
    fake.say("Ends without the marker.", drop_done=True)
    if backend.name == "perplexity":  # [DONE] is not documented there: a finish_reason is enough
        text, last = _joined(await stream(backend, ask(), ep))
        assert text == "Ends without the marker." and last.finish_reason == "stop"
    else:
        with pytest.raises(InvalidResponseError, match="stream cut"):
            await stream(backend, ask(), ep)


async def test_stream_split_across_arbitrary_boundaries(env: Any) -> None:
    backend, fake, ep = env
    events = [{"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
              for piece in ("héllo", " wörld", "!")]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
                   "usage": {"prompt_tokens": 3, "completion_tokens": 3}})
    raw = ": keep-alive\n\n" + "".join(f"data: {json.dumps(e, ensure_ascii=False)}\r\n\r\n" for e in events)
    raw += "data: [DONE]\n\n"
    data = raw.encode()
    fake.push(stream_reply([data[i:i + 7] for i in range(0, len(data), 7)]))  # splits inside UTF-8 too
    text, last = _joined(await stream(backend, ask(), ep))
    assert text == "héllo wörld!" and last.finish_reason == "length"
    assert last.usage is not None and last.usage.output_tokens == 3


async def test_stream_error_event(env: Any) -> None:
    backend, fake, ep = env
    fake.push(stream_reply(['data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n',
                            'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n']))
    with pytest.raises(UpstreamError, match="overloaded"):
        await stream(backend, ask(), ep)


async def test_stream_error_status(env: Any) -> None:
    backend, fake, ep = env
    fake.fail(429, "slow down", headers={"Retry-After": "3"})
    with pytest.raises(RateLimitError) as info:
        await stream(backend, ask(), ep)
    assert info.value.retry_after == 3


def test_groq_usage_in_x_groq() -> None:
    parser = BACKENDS["groq"]().stream_parser()
    usage = {"prompt_tokens": 9, "completion_tokens": 2}
    choice = {"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}
    parser.feed(None, json.dumps({"choices": [choice], "x_groq": {"id": "r", "usage": usage}}))
    last = parser.feed(None, "[DONE]")[-1]
    assert parser.done() and last.usage is not None and last.usage.input_tokens == 9


def test_together_repeated_tool_fields() -> None:
    parser = BACKENDS["together"]().stream_parser()
    for frag in ('{"ci', 'ty": ', '"Oslo"}'):
        parser.feed(None, json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_x", "type": "function",
             "function": {"name": "get_weather", "arguments": frag}}]}, "finish_reason": None}]}))
    parser.feed(None, json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "eos"}]}))
    last = parser.feed(None, "[DONE]")[-1]
    assert last.tool_calls == [ToolCall("call_x", "get_weather", {"city": "Oslo"})]
    assert last.finish_reason == "eos"


def test_streamed_reasoning_is_dropped_for_perplexity() -> None:
    parser = BACKENDS["perplexity"]().stream_parser()
    texts = []
    for piece in ("<th", "ink>hmm", "</think>\n", "Answer", " here"):
        texts += [d.text for d in parser.feed(None, json.dumps({"choices": [{"index": 0, "delta": {
            "content": piece}}]}))]
    assert "".join(texts) == "Answer here"


# -- URLs and Azure --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "base", "url"), [
    ("openai", "", "https://api.openai.com/v1/chat/completions"),
    ("openai", "https://my-proxy.example.com", "https://my-proxy.example.com/v1/chat/completions"),
    ("openai", "https://my-proxy.example.com/", "https://my-proxy.example.com/v1/chat/completions"),
    ("openai", "http://localhost:8000/v1", "http://localhost:8000/v1/chat/completions"),
    ("openai", "https://gw.example.com/llm", "https://gw.example.com/llm/v1/chat/completions"),
    ("openai", "https://gw.example.com/llm/v1/", "https://gw.example.com/llm/v1/chat/completions"),
    ("openai", "https://x.example.com/api/v4", "https://x.example.com/api/v4/chat/completions"),
    ("openai", "https://x.example.com/v1/chat/completions", "https://x.example.com/v1/chat/completions"),
    ("mistral", "", "https://api.mistral.ai/v1/chat/completions"),
    ("together", "", "https://api.together.xyz/v1/chat/completions"),
    ("perplexity", "", "https://api.perplexity.ai/chat/completions"),
    ("groq", "", "https://api.groq.com/openai/v1/chat/completions"),
    ("groq", "https://api.groq.com/openai/v1", "https://api.groq.com/openai/v1/chat/completions"),
    ("deepseek", "", "https://api.deepseek.com/chat/completions"),
    ("deepseek", "https://api.deepseek.com/v1", "https://api.deepseek.com/v1/chat/completions"),
])
def test_url_rule(name: str, base: str, url: str) -> None:
    call = BACKENDS[name]().build(ask(), Endpoint(name, base, "k"))
    assert call.url == url and call.params == {}
    assert call.headers["Authorization"] == "Bearer k"


@pytest.mark.parametrize(("base", "url", "params"), [
    ("https://my-resource.openai.azure.com/openai/deployments/my-deployment",
     "https://my-resource.openai.azure.com/openai/deployments/my-deployment/chat/completions",
     {"api-version": AZURE_API_VERSION}),
    ("https://my-resource.openai.azure.com/openai/deployments/my-deployment?api-version=2025-01-01-preview",
     "https://my-resource.openai.azure.com/openai/deployments/my-deployment/chat/completions",
     {"api-version": "2025-01-01-preview"}),
    ("https://my-resource.openai.azure.com", "https://my-resource.openai.azure.com/openai/deployments/gpt-4o/chat/completions",
     {"api-version": AZURE_API_VERSION}),
    ("https://my-resource.openai.azure.com/openai/v1", "https://my-resource.openai.azure.com/openai/v1/chat/completions",
     {}),
])
def test_azure_urls(base: str, url: str, params: dict[str, str]) -> None:
    call = OpenAIBackend().build(ask(model="gpt-4o"), Endpoint("openai", base, "azkey"))
    assert (call.url, call.params) == (url, params)
    assert call.headers["api-key"] == "azkey" and "Authorization" not in call.headers


async def test_azure_deployment_against_fake() -> None:
    with OpenAICompatFake("openai", azure=True) as fake:
        ep = Endpoint("openai", fake.url + "/openai/deployments/my-deployment", DEFAULT_KEY)
        fake.say("from azure")
        assert (await chat(OpenAIBackend(), ask(model="gpt-4o"), ep)).text == "from azure"
        assert fake.last.query == {"api-version": AZURE_API_VERSION}
        assert fake.last.header("api-key") == DEFAULT_KEY
        with pytest.raises(AuthError, match="Access denied"):
            await chat(OpenAIBackend(), ask(), Endpoint("openai", ep.base_url, "bad"))
        deltas = await stream(OpenAIBackend(), ask(), ep)
        assert "".join(d.text for d in deltas) == "ok"


def test_registry_finds_each_backend() -> None:
    from kdeps.llm import registry

    for name, cls in BACKENDS.items():
        assert type(registry.get_backend(name)) is cls


# -- the provider's own hosts, and any OpenAI-compatible server behind baseUrl -----------------------------
@pytest.mark.parametrize(("base", "field"), [
    ("https://api.openai.com", "max_completion_tokens"),
    ("https://api.openai.com/v1", "max_completion_tokens"),
    ("https://res.openai.azure.com/openai/deployments/gpt", "max_completion_tokens"),
    ("http://127.0.0.1:8080/v1", "max_tokens"),
    ("https://gateway.example.com/llm", "max_tokens"),
])
def test_max_tokens_field_follows_the_host(base: str, field: str) -> None:
    call = OpenAIBackend().build(ask(max_tokens=5, model="llama"), Endpoint("openai", base, "k"), stream=True)
    assert call.body[field] == 5 and len([k for k in call.body if k.startswith("max_")]) == 1
    assert call.body["stream_options"] == {"include_usage": True}


def test_reasoning_models_keep_max_completion_tokens_behind_a_gateway() -> None:
    ep = Endpoint("openai", "http://gw:1/v1", "k")
    call = OpenAIBackend().build(ask(max_tokens=5, model="o3-mini"), ep)
    assert call.body == {**call.body, "max_completion_tokens": 5} and "max_tokens" not in call.body


def test_perplexity_json_without_keys_is_a_generic_schema() -> None:
    call = BACKENDS["perplexity"]().build(ask(json_mode=True), Endpoint("perplexity", "https://x.ai", "k"))
    schema = {"type": "object"}
    assert call.body["response_format"] == {"type": "json_schema", "json_schema": {"schema": schema}}


@pytest.fixture
def compatible() -> Iterator[tuple[OpenAICompatBackend, OpenAICompatFake, Endpoint]]:
    with OpenAICompatFake("llamacpp", api_key=None) as fake:
        yield OpenAIBackend(), fake, Endpoint("openai", fake.url + "/v1", None)


async def test_compatible_server_honours_max_tokens(compatible: Any) -> None:
    backend, fake, ep = compatible
    fake.say("one two three four five six seven eight")
    result = await chat(backend, ask(max_tokens=3), ep)
    assert (result.text, result.finish_reason) == ("one two three", "length")


async def test_compatible_server_tool_turn_replayed(compatible: Any) -> None:
    backend, fake, ep = compatible
    call = ToolCall("call_1", "get_weather", {"city": "Paris"})
    fake.say("Sunny.")
    req = ChatRequest(model="m", tools=[WEATHER], messages=[
        Message("user", "Weather?"), Message("assistant", "", tool_calls=[call]),
        Message("tool", "sunny", tool_call_id=call.id)])
    assert (await chat(backend, req, ep)).text == "Sunny."  # the fake answers 500 to `content: null`
    assert fake.last.json["messages"][1]["content"] == ""


async def test_compatible_server_stream_without_usage(compatible: Any) -> None:
    backend, fake, ep = compatible
    fake.say("a b c")
    deltas = await stream(backend, ask(), ep)
    assert "".join(d.text for d in deltas) == "a b c"
    assert deltas[-1].finish_reason == "stop" and deltas[-1].usage is not None
    assert fake.last.json["stream_options"] == {"include_usage": True}
