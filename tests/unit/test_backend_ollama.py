"""The Ollama backend against the strict fake Ollama server, through the real transport."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import aiohttp
import pytest

from kdeps.llm import transport
from kdeps.llm.backends.ollama import OllamaBackend
from kdeps.llm.errors import (
    BadRequestError,
    InvalidResponseError,
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
from tests.fakes.base import stream_reply
from tests.fakes.ollama import OllamaFake

MODEL = "llama3.2:1b"
JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 20
WEATHER = ToolSpec("get_weather", "Weather for a city",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture
def fake() -> Iterator[OllamaFake]:
    with OllamaFake() as server:
        yield server


@pytest.fixture
def ep(fake: OllamaFake) -> Endpoint:
    return Endpoint("ollama", fake.url)


async def chat(req: ChatRequest, ep: Endpoint) -> ChatResult:
    backend = OllamaBackend()
    call = backend.build(req, ep)
    status, headers, data, text = await transport.post_json(call, time.monotonic() + 10, backend="ollama")
    if status >= 400:
        raise backend.error(status, data, text, headers)
    return backend.parse(data)


async def stream(req: ChatRequest, ep: Endpoint) -> list[StreamDelta]:
    backend = OllamaBackend()
    parser = backend.stream_parser()
    out: list[StreamDelta] = []
    call = backend.build(req, ep, stream=True)
    async with transport.open_stream(call, time.monotonic() + 10, backend="ollama",
                                     accept="application/x-ndjson") as resp:
        if resp.status >= 400:
            data, text = await resp.read_body()
            raise backend.error(resp.status, data, text, resp.headers)
        async for event, data in resp.events(backend.stream_format):
            out += parser.feed(event, data)
            if parser.done():
                break
    return out + parser.finish()


def ask(text: str = "Hello?", **kw: object) -> ChatRequest:
    return ChatRequest(model=MODEL, messages=[Message("user", text)], **kw)  # type: ignore[arg-type]


async def test_plain_chat(fake: OllamaFake, ep: Endpoint) -> None:
    fake.say("Hi there", usage=(26, 3))
    result = await chat(ask(), ep)
    assert (result.text, result.finish_reason, result.model) == ("Hi there", "stop", MODEL)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (26, 3)
    assert fake.last.path == "/api/chat" and "authorization" not in fake.last.headers
    assert fake.last.json == {"model": MODEL, "messages": [{"role": "user", "content": "Hello?"}],
                              "stream": False}


def test_default_url_and_api_suffix() -> None:
    backend = OllamaBackend()
    assert backend.build(ask(), Endpoint("ollama", "")).url == "http://localhost:11434/api/chat"
    assert backend.build(ask(), Endpoint("ollama", "http://gpu-box:11434/")).url == "http://gpu-box:11434/api/chat"
    assert backend.build(ask(), Endpoint("ollama", "http://h/ollama/api")).url == "http://h/ollama/api/chat"
    cloud = backend.build(ask(), Endpoint("ollama", "https://ollama.com", "k"))
    assert cloud.headers["Authorization"] == "Bearer k"
    assert (OllamaBackend.name, OllamaBackend.env_var, OllamaBackend.default_base_url) == (
        "ollama", None, "http://localhost:11434")


async def test_system_scenario_and_options(fake: OllamaFake, ep: Endpoint) -> None:
    req = ChatRequest(model=MODEL, system="Be brief.", temperature=0.3, top_p=0.8, max_tokens=100,
                      context_length=8192, frequency_penalty=0.1, presence_penalty=0.2,
                      messages=[Message("user", "Hi"), Message("assistant", "Hello!"),
                                Message("user", "Why?")])
    await chat(req, ep)
    body = fake.last.json
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Why?"}]
    assert body["options"] == {"temperature": 0.3, "top_p": 0.8, "num_predict": 100, "num_ctx": 8192,
                               "frequency_penalty": 0.1, "presence_penalty": 0.2}


async def test_json_mode_and_schema(fake: OllamaFake, ep: Endpoint) -> None:
    fake.say('{"answer": "yes"}')
    result = await chat(ask(json_mode=True), ep)
    assert json.loads(result.text) == {"answer": "yes"} and fake.last.json["format"] == "json"
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    await chat(ask(json_mode=True, json_schema=schema), ep)
    assert fake.last.json["format"] == schema


async def test_tools_calls_and_replay(fake: OllamaFake, ep: Endpoint) -> None:
    fake.call_tools(("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"}))
    first = await chat(ask("Weather?", tools=[WEATHER]), ep)
    assert fake.last.json["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city", "parameters": WEATHER.parameters}}]
    assert [(c.name, c.arguments) for c in first.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})]
    call = first.tool_calls[0]
    fake.say("Sunny.")
    req = ChatRequest(model=MODEL, tools=[WEATHER], messages=[
        Message("user", "Weather?"), Message("assistant", "", tool_calls=[call]),
        Message("tool", "sunny", tool_call_id=call.id, name="get_weather"),
        Message("tool", "no such city", tool_call_id="x", name="get_weather", is_error=True)])
    assert (await chat(req, ep)).text == "Sunny."
    sent = fake.last.json["messages"]
    assert sent[1]["tool_calls"] == [{"id": call.id, "function": {"name": "get_weather",
                                                                  "arguments": {"city": "Paris"}}}]
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_name": "get_weather",
                       "tool_call_id": call.id}
    assert sent[3]["content"] == "Error: no such city"


def test_tool_arguments_as_string_or_invalid() -> None:
    backend = OllamaBackend()
    ok = backend.parse({"message": {"content": "", "tool_calls": [
        {"function": {"name": "f", "arguments": '{"a": 1}'}}]}, "done": True})
    assert ok.tool_calls == [ToolCall("call_0", "f", {"a": 1})]
    with pytest.raises(InvalidResponseError, match="not valid JSON"):
        backend.parse({"message": {"tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]}})
    with pytest.raises(InvalidResponseError):
        backend.parse({"done": True})


async def test_images_are_raw_base64(fake: OllamaFake, ep: Endpoint) -> None:
    image = ImagePart(JPEG, "image/jpeg")
    await chat(ChatRequest(model=MODEL, messages=[Message("user", "What?", images=[image])]), ep)
    images = fake.last.json["messages"][0]["images"]
    assert images == [base64.b64encode(JPEG).decode()] and not images[0].startswith("data:")


async def test_model_not_found_suggests_pull(fake: OllamaFake, ep: Endpoint) -> None:
    with pytest.raises(NotFoundError) as info:
        await chat(ChatRequest(model="llama3.3", messages=[Message("user", "hi")]), ep)
    assert info.value.upstream_status == 404
    assert 'model "llama3.3" not found' in info.value.message
    assert "ollama pull llama3.3" in info.value.message


async def test_older_not_found_wording_and_plain_404(fake: OllamaFake, ep: Endpoint) -> None:
    fake.fail(404, "model 'mistral:7b' not found")
    with pytest.raises(NotFoundError, match="ollama pull mistral:7b"):
        await chat(ask(), ep)
    with pytest.raises(NotFoundError, match="404 page not found") as info:
        await chat(ask(), Endpoint("ollama", fake.url + "/wrong"))
    assert "ollama pull" not in info.value.message


@pytest.mark.parametrize(("status", "cls"), [(400, BadRequestError), (500, UpstreamError),
                                             (503, UpstreamError)])
async def test_error_statuses(fake: OllamaFake, ep: Endpoint, status: int, cls: type[Exception]) -> None:
    fake.fail(status, "server busy, please try again. maximum pending requests exceeded")
    with pytest.raises(cls, match="maximum pending requests exceeded"):
        await chat(ask(), ep)


async def test_rate_limit_retry_after(fake: OllamaFake, ep: Endpoint) -> None:
    fake.fail(429, "too many requests", headers={"Retry-After": "2"})
    with pytest.raises(RateLimitError) as info:
        await chat(ask(), ep)
    assert info.value.retry_after == 2


async def test_fake_rejects_bad_requests(fake: OllamaFake) -> None:
    async with aiohttp.ClientSession() as s:
        for body, needle in [({"messages": []}, "model is required"),
                             ({"model": MODEL, "format": "yaml"}, "invalid format"),
                             ({"model": MODEL, "options": {"num_ctx": "big"}}, "num_ctx"),
                             ({"model": MODEL, "messages": [{"role": "user", "content": "x", "images": [
                                 "data:image/png;base64,AAAA"]}]}, "base64")]:
            async with s.post(fake.url + "/api/chat", json=body) as r:
                assert r.status in (400, 500) and needle in (await r.json())["error"]


# -- streaming -------------------------------------------------------------------------------------------
async def test_stream_text_and_usage(fake: OllamaFake, ep: Endpoint) -> None:
    fake.say("Streaming from Ollama.", usage=(30, 8), pieces=4)
    deltas = await stream(ask(), ep)
    assert "".join(d.text for d in deltas) == "Streaming from Ollama."
    last = deltas[-1]
    assert last.finish_reason == "stop" and last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens) == (30, 8)
    assert fake.last.json["stream"] is True


async def test_stream_tool_calls(fake: OllamaFake, ep: Endpoint) -> None:
    fake.call_tools(("get_weather", {"city": "Lima"}))
    last = (await stream(ask(tools=[WEATHER]), ep))[-1]
    assert [(c.name, c.arguments) for c in last.tool_calls] == [("get_weather", {"city": "Lima"})]


async def test_stream_cut(fake: OllamaFake, ep: Endpoint) -> None:
    fake.say("This will be cut off.", pieces=5, cut_after=2)
    with pytest.raises(InvalidResponseError, match="cut"):
        await stream(ask(), ep)


async def test_stream_ending_without_done(fake: OllamaFake, ep: Endpoint) -> None:
    line = json.dumps({"model": MODEL, "message": {"role": "assistant", "content": "partial"}, "done": False})
    fake.push(stream_reply([line + "\n"], content_type="application/x-ndjson"))
    with pytest.raises(InvalidResponseError, match="stream cut"):
        await stream(ask(), ep)


async def test_stream_error_line(fake: OllamaFake, ep: Endpoint) -> None:
    fake.push(stream_reply(['{"model":"m","message":{"role":"assistant","content":"a"},"done":false}\n',
                            '{"error":"an error was encountered while running the model"}\n'],
                           content_type="application/x-ndjson"))
    with pytest.raises(UpstreamError, match="error was encountered"):
        await stream(ask(), ep)


async def test_stream_split_lines(fake: OllamaFake, ep: Endpoint) -> None:
    lines = [{"message": {"role": "assistant", "content": c}, "done": False} for c in ("ça ", "va ", "bien")]
    lines.append({"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "length",
                  "prompt_eval_count": 4, "eval_count": 3})
    data = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode()
    pieces = [data[i:i + 5] for i in range(0, len(data), 5)]
    fake.push(stream_reply(pieces, content_type="application/x-ndjson"))
    deltas = await stream(ask(), ep)
    assert "".join(d.text for d in deltas) == "ça va bien" and deltas[-1].finish_reason == "length"


# -- the fake's other endpoints --------------------------------------------------------------------------
async def test_stream_is_the_default_when_absent(fake: OllamaFake) -> None:
    fake.say("abc", pieces=3)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
    async with aiohttp.ClientSession() as s, s.post(fake.url + "/api/chat", json=body) as r:
        assert r.content_type == "application/x-ndjson"
        lines = [json.loads(x) for x in (await r.text()).splitlines()]
    assert [x["message"]["content"] for x in lines] == ["a", "b", "c", ""] and lines[-1]["done"] is True


async def test_tags_show_and_pull(fake: OllamaFake) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(fake.url + "/api/tags") as r:
            names = [m["name"] for m in (await r.json())["models"]]
        assert MODEL in names
        async with s.post(fake.url + "/api/show", json={"model": "qwen2:0.5b"}) as r:
            assert r.status == 404
        async with s.post(fake.url + "/api/pull", json={"model": "qwen2:0.5b"}) as r:
            progress = [json.loads(x) for x in (await r.text()).splitlines()]
        assert progress[0] == {"status": "pulling manifest"} and progress[-1] == {"status": "success"}
        assert any(p.get("completed") == p.get("total") and p.get("total") for p in progress)
        async with s.post(fake.url + "/api/show", json={"model": "qwen2:0.5b"}) as r:
            assert r.status == 200 and "capabilities" in await r.json()
    pulled = ChatRequest(model="qwen2:0.5b", messages=[Message("user", "hi")])
    await chat(pulled, Endpoint("ollama", fake.url))


async def test_scripted_pull_failure(fake: OllamaFake) -> None:
    fake.say("chat answer")
    lines = ['{"status":"pulling manifest"}\n', '{"error":"pull model manifest: file does not exist"}\n']
    fake.push(stream_reply(lines, content_type="application/x-ndjson"), path="/api/pull")
    async with aiohttp.ClientSession() as s, s.post(fake.url + "/api/pull", json={"model": "nope"}) as r:
        assert "file does not exist" in await r.text()
    assert (await chat(ask(), Endpoint("ollama", fake.url))).text == "chat answer"


def test_registry_finds_ollama() -> None:
    from kdeps.llm import registry

    assert type(registry.get_backend("ollama")) is OllamaBackend
