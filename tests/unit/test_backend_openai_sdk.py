"""Calibration: the official `openai` SDK talks to the OpenAI fake. Its requests pass the fake's strict
checks, and it parses the fake's answers (plain, streamed, tool calls, errors) — so the fake speaks the
real protocol, and the backend tests against it mean something."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from tests.fakes.openai_compat import DEFAULT_KEY, OpenAICompatFake


@pytest.fixture
def fake() -> Iterator[OpenAICompatFake]:
    with OpenAICompatFake("openai") as server:
        yield server


def client(fake: OpenAICompatFake, key: str = DEFAULT_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.url + "/v1", api_key=key, max_retries=0, timeout=10)


def test_sdk_plain_chat(fake: OpenAICompatFake) -> None:
    fake.say("Hello from the fake", usage=(9, 4))
    with client(fake) as c:
        out = c.chat.completions.create(model="gpt-4o", max_completion_tokens=50, temperature=0.5,
                                        messages=[{"role": "system", "content": "Be brief."},
                                                  {"role": "user", "content": "Hi"}])
    assert out.choices[0].message.content == "Hello from the fake"
    assert out.choices[0].finish_reason == "stop"
    assert out.usage is not None and (out.usage.prompt_tokens, out.usage.completion_tokens) == (9, 4)
    assert fake.last.json["max_completion_tokens"] == 50


def test_sdk_streaming_with_usage(fake: OpenAICompatFake) -> None:
    fake.say("one two three", usage=(5, 3), pieces=3)
    with client(fake) as c:
        chunks = list(c.chat.completions.create(model="gpt-4o", stream=True,
                                                stream_options={"include_usage": True},
                                                messages=[{"role": "user", "content": "Count"}]))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "one two three"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_sdk_streamed_tool_calls(fake: OpenAICompatFake) -> None:
    fake.call_tools(("get_weather", {"city": "Paris"}))
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "w",
                                               "parameters": {"type": "object", "properties": {}}}}]
    with client(fake) as c, c.chat.completions.stream(
            model="gpt-4o", tools=tools, messages=[{"role": "user", "content": "Weather?"}]) as s:
        final = s.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}


def test_sdk_tool_round_trip_passes_strict_checks(fake: OpenAICompatFake) -> None:
    fake.call_tools(("get_weather", {"city": "Oslo"}))
    fake.say("Cold.")
    with client(fake) as c:
        messages: list = [{"role": "user", "content": "Weather?"}]
        first = c.chat.completions.create(model="gpt-4o", messages=messages)
        msg = first.choices[0].message
        messages += [msg.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "-5C"}]
        second = c.chat.completions.create(model="gpt-4o", messages=messages)
    assert second.choices[0].message.content == "Cold."


def test_sdk_maps_the_fake_errors(fake: OpenAICompatFake) -> None:
    with client(fake, key="sk-wrong") as c, pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    fake.fail(429, "Rate limit reached", headers={"retry-after-ms": "10"})
    with client(fake) as c, pytest.raises(openai.RateLimitError, match="Rate limit reached"):
        c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    with client(fake) as c, pytest.raises(openai.BadRequestError, match="must contain the word 'json'"):
        c.chat.completions.create(model="gpt-4o", response_format={"type": "json_object"},
                                  messages=[{"role": "user", "content": "x"}])
    assert fake.pending() == 0
