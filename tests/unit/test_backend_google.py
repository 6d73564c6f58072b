"""Gemini backend against the strict Generative Language API fake, through the real client and transport."""

from __future__ import annotations

import base64
import json
import time

import pytest

from kdeps.llm import client, transport
from kdeps.llm.backends.google import GoogleBackend, gemini_schema
from kdeps.llm.client import RetryPolicy
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
from tests.fakes.google import KEY, GeminiFake, chunks, error_body, rate_limited, response
from tests.unit.backend_harness import ONCE, Harness, shared_fake

MODEL = "gemini-1.5-pro"
PATH = f"/v1beta/models/{MODEL}:generateContent"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
WEATHER = ToolSpec(
    "weather",
    "Weather for a city",
    {
        "type": "object",
        "additionalProperties": False,
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"], "enum": ["C", "F"]}},
        "required": ["city"],
    },
)


server, fake = shared_fake(lambda: GeminiFake(models={MODEL}))
H = Harness("google", MODEL, KEY)
req, at, ask, collect = H.req, H.at, H.ask, H.collect


async def raw_error(fake: GeminiFake, key: str | None):
    """The backend's error for what the fake answers a call made with `key` (None: no key at all)."""
    backend = GoogleBackend()
    call = backend.build(req(), at(fake, key))
    status, headers, data, text = await transport.post_json(call, time.monotonic() + 5)
    await transport.aclose()
    return backend.error(status, data, text, headers)


# -- request shape ------------------------------------------------------------------------------------


async def test_plain_chat_request_and_answer(fake: GeminiFake) -> None:
    fake.reply("Hello from Gemini", usage=(11, 4))
    result = await ask(fake, req("What is AI?"))
    rec = fake.last
    assert rec.path == PATH and rec.header("x-goog-api-key") == KEY and "key" not in rec.query
    assert rec.json == {"contents": [{"role": "user", "parts": [{"text": "What is AI?"}]}]}
    assert (result.text, result.finish_reason, result.model) == (
        "Hello from Gemini",
        "stop",
        "gemini-1.5-pro-002",
    )
    assert (result.usage.input_tokens, result.usage.output_tokens) == (11, 4)


async def test_system_instruction_and_model_role(fake: GeminiFake) -> None:
    request = ChatRequest(
        model=MODEL,
        system="Be brief.",
        timeout=10,
        messages=[
            Message("system", "Answer in French."),
            Message("user", "Hi"),
            Message("assistant", "Bonjour"),
            Message("user", "Ça va ?"),
        ],
    )
    await ask(fake, request)
    body = fake.last.json
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nAnswer in French."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]


async def test_generation_config(fake: GeminiFake) -> None:
    await ask(
        fake,
        req(
            temperature=0.3,
            top_p=0.8,
            max_tokens=256,
            presence_penalty=0.1,
            frequency_penalty=0.2,
            context_length=8192,
        ),
    )
    assert fake.last.json["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.8,
        "maxOutputTokens": 256,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
    }


async def test_json_mode_with_schema_reduced_to_gemini_subset(fake: GeminiFake) -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "$defs": {"Tag": {"type": "string"}},
        "properties": {
            "answer": {"type": "string"},
            "score": {"type": ["number", "null"]},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
            "kind": {"const": "final"},
        },
        "required": ["answer"],
    }
    fake.reply('{"answer": "42"}')
    result = await ask(fake, req(json_mode=True, json_schema=schema))  # the fake rejects unknown keywords
    config = fake.last.json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {
        "type": "OBJECT",
        "required": ["answer"],
        "properties": {
            "answer": {"type": "STRING"},
            "score": {"type": "NUMBER", "nullable": True},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
            "kind": {"enum": ["final"], "type": "STRING"},
        },
    }
    assert json.loads(result.text) == {"answer": "42"}


async def test_json_mode_without_schema_sets_only_the_mime_type(fake: GeminiFake) -> None:
    await ask(fake, req(json_mode=True, json_keys=["answer"]))
    assert fake.last.json["generationConfig"] == {"responseMimeType": "application/json"}


async def test_tools_are_function_declarations_in_the_schema_subset(fake: GeminiFake) -> None:
    bare = ToolSpec("now", "Current time", {"type": "object", "properties": {}})
    await ask(fake, req(tools=[WEATHER, bare]))
    decls = fake.last.json["tools"][0]["functionDeclarations"]
    assert decls[0]["parameters"] == {
        "type": "OBJECT",
        "required": ["city"],
        "properties": {
            "city": {"type": "STRING"},
            "unit": {"type": "STRING", "nullable": True, "enum": ["C", "F"]},
        },
    }
    assert decls[1] == {"name": "now", "description": "Current time"}  # no empty OBJECT parameters


async def test_function_calls_get_stable_ids(fake: GeminiFake) -> None:
    for _ in range(2):
        fake.reply(calls=[("weather", {"city": "Paris"}), ("weather", {"city": "Oslo"})])
    first = await ask(fake, req(tools=[WEATHER]))
    second = await ask(fake, req(tools=[WEATHER]))
    assert [(c.name, c.arguments) for c in first.tool_calls] == [
        ("weather", {"city": "Paris"}),
        ("weather", {"city": "Oslo"}),
    ]
    assert first.finish_reason == "tool_calls"
    ids = [c.id for c in first.tool_calls]
    assert len(set(ids)) == 2 and ids == [c.id for c in second.tool_calls]


async def test_thought_signature_travels_with_its_own_conversation(fake: GeminiFake) -> None:
    # Two conversations get the same call (so the same derived id) with different signatures; each
    # must send back its own, which a process-wide table keyed by the id could not do.
    fake.reply(calls=[("weather", {"city": "Paris"})], signature="c2lnLWE=")
    first = (await ask(fake, req(tools=[WEATHER]))).tool_calls[0]
    fake.reply(calls=[("weather", {"city": "Paris"})], signature="c2lnLWI=")
    second = (await ask(fake, req(tools=[WEATHER]))).tool_calls[0]
    assert first.id == second.id
    for call, signature in ((first, "c2lnLWE="), (second, "c2lnLWI=")):
        fake.reply("done")
        await ask(fake, ChatRequest(model=MODEL, tools=[WEATHER], timeout=10, messages=[
            Message("user", "Weather?"), Message("assistant", "", tool_calls=[call]),
            Message("tool", "{}", tool_call_id=call.id)]))
        assert fake.last.json["contents"][1]["parts"][0]["thoughtSignature"] == signature


async def test_tool_results_replayed_as_function_responses(fake: GeminiFake) -> None:
    fake.reply(calls=[("weather", {"city": "Paris"})], signature="c2lnbmF0dXJl")
    first = await ask(fake, req(tools=[WEATHER]))
    call = first.tool_calls[0]
    other = ToolCall("call-from-gemini", "weather", {"city": "X"})
    request = ChatRequest(
        model=MODEL,
        tools=[WEATHER],
        timeout=10,
        messages=[
            Message("user", "Weather?"),
            Message("assistant", "", tool_calls=[call, other]),
            Message("tool", '{"temp": 21}', tool_call_id=call.id),
            Message("tool", "unknown city", tool_call_id=other.id, name="weather", is_error=True),
        ],
    )
    fake.reply("It is 21 degrees in Paris.")
    result = await ask(fake, request)
    assert result.text == "It is 21 degrees in Paris."
    model_turn, answers = fake.last.json["contents"][1:]
    assert model_turn == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "weather", "args": {"city": "Paris"}},
                "thoughtSignature": "c2lnbmF0dXJl",
            },
            {"functionCall": {"name": "weather", "args": {"city": "X"}, "id": "call-from-gemini"}},
        ],
    }
    assert answers == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "weather", "response": {"output": {"temp": 21}}}},
            {
                "functionResponse": {
                    "name": "weather",
                    "response": {"error": "unknown city"},
                    "id": "call-from-gemini",
                }
            },
        ],
    }


async def test_images_are_inline_data(fake: GeminiFake) -> None:
    request = ChatRequest(
        model=MODEL,
        timeout=10,
        messages=[Message("user", "What is this?", images=[ImagePart(PNG, "image/png")])],
    )
    await ask(fake, request)
    parts = fake.last.json["contents"][0]["parts"]
    assert parts[0]["inlineData"]["mimeType"] == "image/png"
    assert base64.b64decode(parts[0]["inlineData"]["data"]) == PNG
    assert parts[1] == {"text": "What is this?"}


# -- errors -------------------------------------------------------------------------------------------


async def test_wrong_key_is_auth_error(fake: GeminiFake) -> None:
    with pytest.raises(AuthError) as info:
        await ask(fake, req(), key="AIza-wrong")
    assert info.value.upstream_status == 400 and "API key not valid" in info.value.message


async def test_missing_key_403_is_auth_error(fake: GeminiFake) -> None:
    err = await raw_error(fake, None)
    assert isinstance(err, AuthError) and err.upstream_status == 403 and "unregistered callers" in err.message


async def test_unknown_model_is_not_found(fake: GeminiFake) -> None:
    with pytest.raises(NotFoundError, match="models/gemini-nope is not found"):
        await client.complete(
            ChatRequest(model="gemini-nope", messages=[Message("user", "x")], timeout=10),
            at(fake),
            retry=ONCE,
        )


async def test_base_url_with_version_is_kept(fake: GeminiFake) -> None:
    await ask(fake, req(), path="/v1")
    assert fake.last.path == f"/v1/models/{MODEL}:generateContent"


async def test_bad_request_shows_provider_message(fake: GeminiFake) -> None:
    fake.push(
        json_reply(error_body(400, "* GenerateContentRequest.contents: contents is not specified"), 400)
    )
    with pytest.raises(BadRequestError, match="contents is not specified"):
        await ask(fake, req())


async def test_rate_limit_retry_delay_comes_from_retry_info(fake: GeminiFake) -> None:
    fake.push(rate_limited("12s"))
    with pytest.raises(RateLimitError) as info:
        await ask(fake, req())
    assert info.value.retry_after == 12 and info.value.retryable


async def test_per_day_quota_is_not_retryable(fake: GeminiFake) -> None:
    fake.push(rate_limited("3s", per_day=True))
    with pytest.raises(RateLimitError) as info:
        await ask(fake, req())
    assert not info.value.retryable


async def test_rate_limit_then_success_waits_the_retry_delay(fake: GeminiFake) -> None:
    fake.push(rate_limited("0.3s")).reply("after the wait")
    started = time.monotonic()
    result = await client.complete(req(), at(fake), retry=RetryPolicy(max_attempts=2, initial_delay=0))
    assert result.text == "after the wait" and result.attempts == 2
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors(fake: GeminiFake, status: int) -> None:
    fake.fail(status, "The model is overloaded. Please try again later.")
    with pytest.raises(UpstreamError, match="overloaded"):
        await ask(fake, req())


async def test_blocked_prompt_is_a_clear_error(fake: GeminiFake) -> None:
    fake.blocked("SAFETY")
    with pytest.raises(BadRequestError, match=r"blocked the prompt.*SAFETY"):
        await ask(fake, req())


async def test_safety_finish_without_content_is_a_clear_error(fake: GeminiFake) -> None:
    data = response("")
    data["candidates"][0] = {"finishReason": "SAFETY", "index": 0, "safetyRatings": []}
    fake.push(json_reply(data))
    with pytest.raises(BadRequestError, match="finishReason SAFETY"):
        await ask(fake, req())


async def test_answer_without_candidates_is_invalid(fake: GeminiFake) -> None:
    fake.push(json_reply({"usageMetadata": {}}))
    with pytest.raises(InvalidResponseError):
        await ask(fake, req())


# -- streaming ----------------------------------------------------------------------------------------


async def test_stream_without_terminator(fake: GeminiFake) -> None:
    fake.reply("Streams just end here", usage=(9, 6), pieces=3)
    deltas = await collect(fake, req())
    assert fake.last.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert fake.last.query == {"alt": "sse"}
    texts = [d.text for d in deltas if d.text]
    assert len(texts) == 3 and "".join(texts) == "Streams just end here"
    assert deltas[-1].finish_reason == "stop"
    assert (deltas[-1].usage.input_tokens, deltas[-1].usage.output_tokens) == (9, 6)


async def test_stream_tool_calls(fake: GeminiFake) -> None:
    fake.reply("Checking.", calls=[("weather", {"city": "Paris"})])
    deltas = await collect(fake, req(tools=[WEATHER]))
    calls = [c for d in deltas for c in d.tool_calls]
    assert [(c.name, c.arguments) for c in calls] == [("weather", {"city": "Paris"})]
    assert calls[0].id.startswith("gcall_") and deltas[-1].finish_reason == "tool_calls"


async def test_cut_stream_is_invalid_response(fake: GeminiFake) -> None:
    fake.reply("one two three four", pieces=4, cut_after=2)
    with pytest.raises(InvalidResponseError):
        await collect(fake, req())


async def test_stream_that_ends_before_finish_reason_is_invalid(fake: GeminiFake) -> None:
    parts = chunks(response("never finished"))[:-1]
    fake.push(stream_reply([f"data: {json.dumps(c)}\r\n\r\n" for c in parts]))
    with pytest.raises(InvalidResponseError, match="finishReason"):
        await collect(fake, req())


async def test_error_inside_stream(fake: GeminiFake) -> None:
    first = chunks(response("partial"))[0]
    fake.push(
        stream_reply(
            [
                f"data: {json.dumps(first)}\r\n\r\n",
                f"data: {json.dumps(error_body(503, 'The model is overloaded.'))}\r\n\r\n",
            ]
        )
    )
    with pytest.raises(UpstreamError, match="overloaded"):
        await collect(fake, req())


async def test_stream_blocked_prompt(fake: GeminiFake) -> None:
    fake.blocked("PROHIBITED_CONTENT")
    with pytest.raises(BadRequestError, match="PROHIBITED_CONTENT"):
        await collect(fake, req())


def test_schema_reduction_handles_any_of_and_nullable() -> None:
    schema = {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "d", "examples": ["x"]}
    assert gemini_schema(schema) == {"type": "STRING", "nullable": True, "description": "d"}
    assert gemini_schema({"type": ["integer", "string"]}) == {
        "anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]
    }
