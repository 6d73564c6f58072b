"""Cohere v2 backend against the strict Chat API fake, through the real client and transport."""

from __future__ import annotations

import base64
import json
import time

import pytest

from kdeps.llm import transport
from kdeps.llm.backends.cohere import CohereBackend
from kdeps.llm.errors import (
    AuthError,
    BadRequestError,
    InvalidResponseError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
)
from kdeps.llm.types import ChatRequest, ImagePart, Message, ToolCall, ToolSpec
from tests.fakes.base import json_reply, stream_reply
from tests.fakes.cohere import KEY, CohereFake, answer, events
from tests.unit.backend_harness import Harness, shared_fake

MODEL = "command-r-plus"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
WEATHER = ToolSpec(
    "weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


server, fake = shared_fake(CohereFake)
H = Harness("cohere", MODEL, KEY)
req, at, ask, collect = H.req, H.at, H.ask, H.collect


# -- request shape ------------------------------------------------------------------------------------


async def test_plain_chat_request_and_answer(fake: CohereFake) -> None:
    fake.reply("Hello from Command", usage=(5, 4))
    result = await ask(fake, req("What is AI?"))
    rec = fake.last
    assert rec.path == "/v2/chat" and rec.header("authorization") == f"Bearer {KEY}"
    assert rec.json == {"model": MODEL, "messages": [{"role": "user", "content": "What is AI?"}]}
    assert (result.text, result.finish_reason) == ("Hello from Command", "stop")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (105, 4)  # `tokens`, not billed units


async def test_system_scenario_and_params(fake: CohereFake) -> None:
    request = ChatRequest(
        model=MODEL,
        system="Be brief.",
        timeout=10,
        temperature=0.3,
        top_p=0.75,
        max_tokens=200,
        frequency_penalty=0.1,
        presence_penalty=0.2,
        context_length=4096,
        messages=[
            Message("system", "French."),
            Message("user", "Hi"),
            Message("assistant", "Bonjour"),
            Message("user", "Ça va ?"),
        ],
    )
    await ask(fake, request)  # the fake answers 422 to any field Cohere does not know
    body = fake.last.json
    assert [m["role"] for m in body["messages"]] == ["system", "system", "user", "assistant", "user"]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert {
        k: body[k] for k in ("temperature", "p", "max_tokens", "frequency_penalty", "presence_penalty")
    } == {"temperature": 0.3, "p": 0.75, "max_tokens": 200, "frequency_penalty": 0.1, "presence_penalty": 0.2}


async def test_json_mode(fake: CohereFake) -> None:
    fake.reply('{"answer": "yes"}')
    result = await ask(fake, req(json_mode=True, json_keys=["answer"]))
    assert fake.last.json["response_format"] == {"type": "json_object"}
    assert json.loads(result.text) == {"answer": "yes"}
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    await ask(fake, req(json_mode=True, json_schema=schema))
    assert fake.last.json["response_format"] == {"type": "json_object", "json_schema": schema}


async def test_json_mode_is_dropped_with_tools(fake: CohereFake) -> None:
    await ask(fake, req(json_mode=True, tools=[WEATHER]))  # the fake rejects response_format + tools
    assert "response_format" not in fake.last.json


async def test_tools_and_tool_call_parsing(fake: CohereFake) -> None:
    fake.reply(
        "I will check the weather.", calls=[("weather", {"city": "Paris"}), ("weather", {"city": "Oslo"})]
    )
    result = await ask(fake, req(tools=[WEATHER]))
    assert fake.last.json["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather for a city",
                "parameters": WEATHER.parameters,
            },
        }
    ]
    assert result.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [
        ("weather_0fake", "weather", {"city": "Paris"}),
        ("weather_1fake", "weather", {"city": "Oslo"}),
    ]


async def test_tool_results_replayed(fake: CohereFake) -> None:
    calls = [ToolCall("c1", "weather", {"city": "Paris"}), ToolCall("c2", "weather", {"city": "X"})]
    request = ChatRequest(
        model=MODEL,
        tools=[WEATHER],
        timeout=10,
        messages=[
            Message("user", "Weather?"),
            Message("assistant", "Checking both.", tool_calls=calls),
            Message("tool", "sunny", tool_call_id="c1", name="weather"),
            Message("tool", "unknown city", tool_call_id="c2", name="weather", is_error=True),
        ],
    )
    fake.reply("Paris is sunny.")
    assert (await ask(fake, request)).text == "Paris is sunny."
    msgs = fake.last.json["messages"]
    assert msgs[1] == {
        "role": "assistant",
        "tool_plan": "Checking both.",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            },
            {"id": "c2", "type": "function", "function": {"name": "weather", "arguments": '{"city": "X"}'}},
        ],
    }
    assert msgs[2] == {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
    assert msgs[3] == {"role": "tool", "tool_call_id": "c2", "content": '{"error": "unknown city"}'}


async def test_images_are_data_url_parts(fake: CohereFake) -> None:
    request = ChatRequest(
        model=MODEL,
        timeout=10,
        messages=[Message("user", "What is this?", images=[ImagePart(PNG, "image/png")])],
    )
    await ask(fake, request)
    content = fake.last.json["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "What is this?"}
    url = content[1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,") and base64.b64decode(url.split(",", 1)[1]) == PNG


# -- errors -------------------------------------------------------------------------------------------


async def test_wrong_key_is_auth_error(fake: CohereFake) -> None:
    with pytest.raises(AuthError, match="invalid api token"):
        await ask(fake, req(), key="co-wrong")


async def test_missing_key_answer_is_auth_error(fake: CohereFake) -> None:
    backend = CohereBackend()
    call = backend.build(req(), at(fake, None))
    status, headers, data, text = await transport.post_json(call, time.monotonic() + 5)
    await transport.aclose()
    err = backend.error(status, data, text, headers)
    assert isinstance(err, AuthError) and err.message == "no api key supplied"


async def test_invalid_token_498_is_auth_error(fake: CohereFake) -> None:
    fake.fail(498, "invalid api token")
    with pytest.raises(AuthError):
        await ask(fake, req())


async def test_unknown_field_is_a_422_bad_request(fake: CohereFake) -> None:
    backend = CohereBackend()
    call = backend.build(req(tools=[WEATHER]), at(fake))
    call.body["tools"][0]["function"]["strict"] = True
    status, headers, data, text = await transport.post_json(call, time.monotonic() + 5)
    await transport.aclose()
    err = backend.error(status, data, text, headers)
    assert status == 422 and isinstance(err, BadRequestError) and "parameter 'strict'" in err.message


async def test_wrong_path_is_not_found(fake: CohereFake) -> None:
    with pytest.raises(NotFoundError):
        await ask(fake, req(), path="/api")


async def test_base_url_with_v2_is_not_doubled(fake: CohereFake) -> None:
    await ask(fake, req(), path="/v2")
    assert fake.last.path == "/v2/chat"


async def test_rate_limit_with_retry_after(fake: CohereFake) -> None:
    fake.fail(
        429,
        "You are using a Trial key, which is limited to 10 API calls / minute.",
        headers={"Retry-After": "3"},
    )
    with pytest.raises(RateLimitError, match="Trial key") as info:
        await ask(fake, req())
    assert info.value.retry_after == 3


async def test_server_error(fake: CohereFake) -> None:
    fake.fail(500, "internal server error")
    with pytest.raises(UpstreamError):
        await ask(fake, req())


async def test_bad_tool_arguments_are_invalid_response(fake: CohereFake) -> None:
    data = answer(calls=[("weather", {})])
    data["message"]["tool_calls"][0]["function"]["arguments"] = "{not json"
    fake.push(json_reply(data))
    with pytest.raises(InvalidResponseError, match="not valid JSON"):
        await ask(fake, req(tools=[WEATHER]))


# -- streaming ----------------------------------------------------------------------------------------


async def test_stream_text_usage_and_end(fake: CohereFake) -> None:
    fake.reply("Cohere streams events", usage=(7, 5), pieces=3)
    deltas = await collect(fake, req())
    assert fake.last.json["stream"] is True
    texts = [d.text for d in deltas if d.text]
    assert len(texts) == 3 and "".join(texts) == "Cohere streams events"
    assert deltas[-1].finish_reason == "stop" and deltas[-1].usage.output_tokens == 5


async def test_stream_assembles_tool_calls(fake: CohereFake) -> None:
    fake.reply(calls=[("weather", {"city": "Paris", "days": 3})], pieces=4)
    deltas = await collect(fake, req(tools=[WEATHER]))
    calls = [c for d in deltas for c in d.tool_calls]
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("weather_0fake", "weather", {"city": "Paris", "days": 3})
    ]
    assert deltas[-1].finish_reason == "tool_calls"


async def test_cut_stream_is_invalid_response(fake: CohereFake) -> None:
    fake.reply("this will be cut off", pieces=4, cut_after=3)
    with pytest.raises(InvalidResponseError):
        await collect(fake, req())


async def test_stream_without_message_end_is_invalid_response(fake: CohereFake) -> None:
    fake.push(stream_reply(events(answer("no end"))[:-1]))
    with pytest.raises(InvalidResponseError, match="message-end"):
        await collect(fake, req())


async def test_error_in_message_end(fake: CohereFake) -> None:
    head = events(answer("partial"))[:3]
    end = (
        'event: message-end\ndata: {"type": "message-end", "delta": {"finish_reason": "ERROR", '
        '"error": "internal error while generating"}}\n\n'
    )
    fake.push(stream_reply([*head, end]))
    with pytest.raises(UpstreamError, match="internal error while generating"):
        await collect(fake, req())
