"""The `chat` action's own behaviour through the real engine (in-process) against the fakes:
messages and parameters, JSON mode with its corrective re-ask, errors, timeout, streaming, fallback,
key handling and redaction."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kdeps.engine import Engine, RequestData
from kdeps.spec import load_project
from tests.agents import make_agent
from tests.fakes import anthropic as anthropic_fake
from tests.fakes.base import drop, slow
from tests.fakes.ollama import OllamaFake
from tests.fakes.openai_compat import OpenAICompatFake, serve_in_env


@pytest.fixture
def openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAICompatFake]:
    yield from serve_in_env(monkeypatch)


@pytest.fixture
def ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator[OllamaFake]:
    with OllamaFake() as fake:
        monkeypatch.setenv("OLLAMA_URL", fake.url)
        yield fake


def chat(body: str, action_id: str = "answer") -> dict[str, str]:
    """One chat resource (`body` is the YAML under `chat:`, indented by 4)."""
    return {action_id: f"metadata:\n  actionId: {action_id}\nrun:\n  chat:\n{body}"}


def agent(tmp_path: Path, body: str, settings: str = "") -> Path:
    return make_agent(tmp_path, chat(body), target="answer", settings=settings)


async def ask(root: Path, emit: Any = None, **inputs: Any):
    request = RequestData(method="POST", path="/api/v1/run", route="/api/v1/run", body=inputs,
                          headers={"content-type": "application/json"})
    return await Engine(load_project(root)).handle(request, emit=emit)


OPENAI = """\
    backend: openai
    baseUrl: "{{ get('FAKE_URL', 'env') }}"
    model: gpt-4o
"""


# -- request building ----------------------------------------------------------------------------------

async def test_scenario_role_and_parameters(tmp_path: Path, openai: OpenAICompatFake) -> None:
    root = agent(tmp_path, OPENAI + """\
    prompt: "Tell me about {{ get('topic') }}"
    temperature: 0.2
    maxTokens: 300
    topP: 0.9
    frequencyPenalty: 0.5
    presencePenalty: 0.25
    scenario:
      - role: system
        prompt: You are terse.
      - role: user
        prompt: What is REST?
      - role: assistant
        prompt: An architectural style.
""")
    openai.say("Owls hunt at night.")
    res = await ask(root, topic="owls")
    assert res.status == 200, res.body
    assert res.body["data"] == "Owls hunt at night."
    body = openai.last.json
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("system", "You are terse."), ("user", "What is REST?"), ("assistant", "An architectural style."),
        ("user", "Tell me about owls")]
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9
    assert body["frequency_penalty"] == 0.5 and body["presence_penalty"] == 0.25
    assert 300 in (body.get("max_tokens"), body.get("max_completion_tokens"))


async def test_usage_prompt_and_response_accessors(tmp_path: Path, openai: OpenAICompatFake) -> None:
    resources = chat(OPENAI + '    prompt: "{{ get(\'q\') }}"\n', "llm")
    resources["response"] = """\
metadata:
  actionId: response
  requires: [llm]
run:
  apiResponse:
    success: true
    response:
      prompt: llm.prompt('llm')
      text: llm.response('llm')
      usage: llm.usage('llm')
"""
    root = make_agent(tmp_path, resources, target="response")
    openai.say("Paris.")
    res = await ask(root, q="Capital of France?")
    assert res.status == 200, res.body
    data = res.body.get("data", res.body.get("response"))
    assert data["prompt"] == "Capital of France?"
    assert data["text"] == "Paris."
    usage = data["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (11, 7)
    assert usage["backend"] == "openai" and usage["model"] == "gpt-4o"
    assert usage["attempts"] == 1 and usage["latency_ms"] >= 0


async def test_ollama_url_precedence_and_context_length(tmp_path: Path, ollama: OllamaFake) -> None:
    # workflow ollamaUrl points at the fake; contextLength → options.num_ctx
    root = agent(tmp_path, """\
    model: llama3.2:1b
    prompt: hi
    contextLength: 8192
""", settings="""\
agentSettings:
  ollamaUrl: "{{ get('OLLAMA_URL', 'env') }}"
""")
    ollama.say("hello")
    res = await ask(root)
    assert res.status == 200, res.body
    assert ollama.last.path == "/api/chat"
    assert ollama.last.json["options"]["num_ctx"] == 8192


async def test_resource_base_url_beats_workflow_ollama_url(tmp_path: Path, ollama: OllamaFake) -> None:
    root = agent(tmp_path, """\
    model: llama3.2:1b
    baseUrl: "{{ get('OLLAMA_URL', 'env') }}"
    prompt: hi
""", settings="""\
agentSettings:
  ollamaUrl: "http://127.0.0.1:9"
""")
    ollama.say("from the resource URL")
    res = await ask(root)
    assert res.body["data"] == "from the resource URL"


# -- JSON ----------------------------------------------------------------------------------------------

JSON_AGENT = OPENAI + """\
    prompt: "Analyze: {{ get('q') }}"
    jsonResponse: true
    jsonResponseKeys:
      - summary
      - sentiment
"""


async def test_json_response_parsed_with_fences(tmp_path: Path, openai: OpenAICompatFake) -> None:
    openai.say('```json\n{"summary": "fine", "sentiment": "positive"}\n```')
    res = await ask(agent(tmp_path, JSON_AGENT), q="great day")
    assert res.status == 200, res.body
    assert res.body["data"] == {"summary": "fine", "sentiment": "positive"}
    body = openai.last.json
    assert body["response_format"] == {"type": "json_object"}
    system = " ".join(m["content"] for m in body["messages"] if m["role"] == "system")
    assert "summary" in system and "sentiment" in system
    assert len(openai.requests) == 1


async def test_json_missing_keys_triggers_one_reask(tmp_path: Path, openai: OpenAICompatFake) -> None:
    openai.say('{"summary": "fine"}')
    openai.say('{"summary": "fine", "sentiment": "neutral"}')
    res = await ask(agent(tmp_path, JSON_AGENT), q="meh")
    assert res.status == 200, res.body
    assert res.body["data"] == {"summary": "fine", "sentiment": "neutral"}
    assert len(openai.requests) == 2
    retry = openai.last.json["messages"]
    assert retry[-2] == {"role": "assistant", "content": '{"summary": "fine"}'}
    assert retry[-1]["role"] == "user" and "sentiment" in retry[-1]["content"]


async def test_json_still_invalid_fails_with_raw_text(tmp_path: Path, openai: OpenAICompatFake) -> None:
    openai.say("I think it is nice.")
    openai.say("Really, it is nice. " * 100)
    res = await ask(agent(tmp_path, JSON_AGENT + "    strictJsonKeys: true\n"), q="meh")
    assert res.status == 502
    message = res.body["error"]["message"]
    assert "not valid JSON" in message and "Really, it is nice." in message
    assert len(message) < 1000
    assert len(openai.requests) == 2


# -- errors --------------------------------------------------------------------------------------------

async def test_missing_key_names_env_var_before_any_call(tmp_path: Path, openai: OpenAICompatFake,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    res = await ask(agent(tmp_path, OPENAI + "    prompt: hi\n"))
    assert res.status == 503  # the server's configuration, not the client's request
    assert "OPENAI_API_KEY" in res.body["error"]["message"]
    assert openai.requests == []


async def test_provider_error_message_and_key_redaction(tmp_path: Path, openai: OpenAICompatFake,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-secret-4242")
    res = await ask(agent(tmp_path, OPENAI + "    prompt: hi\n"))
    assert res.status == 502
    message = res.body["error"]["message"]
    assert "openai" in message and "401" in message and "Incorrect API key" in message
    assert "sk-wrong-secret-4242" not in json.dumps(res.body)
    assert "sk-wrong-secret-4242" not in caplog.text


async def test_ollama_model_not_found_suggests_pull(tmp_path: Path, ollama: OllamaFake) -> None:
    root = agent(tmp_path, """\
    baseUrl: "{{ get('OLLAMA_URL', 'env') }}"
    model: qwen9:404b
    prompt: hi
""")
    res = await ask(root)
    assert res.status == 502
    assert "ollama pull qwen9:404b" in res.body["error"]["message"]


async def test_ollama_unreachable_names_url(tmp_path: Path) -> None:
    root = agent(tmp_path, """\
    baseUrl: "http://127.0.0.1:9"
    model: llama3.2:1b
    prompt: hi
""")
    res = await ask(root)
    assert res.status == 502
    message = res.body["error"]["message"]
    assert "127.0.0.1:9" in message and "ollama serve" in message.lower()


async def test_timeout_bounds_the_whole_action(tmp_path: Path, openai: OpenAICompatFake) -> None:
    openai.push(slow(drop(), 2.5))
    root = agent(tmp_path, OPENAI + "    prompt: hi\n    timeoutDuration: 1s\n")
    started = time.monotonic()
    res = await ask(root)
    elapsed = time.monotonic() - started
    assert res.status == 504
    message = res.body["error"]["message"]
    assert res.body["error"]["resource"] == "answer" and "1s" in message.replace(" s", "s")
    assert elapsed < 2.2


# -- streaming and fallback ----------------------------------------------------------------------------

async def test_stream_emits_deltas_and_outputs_full_text(tmp_path: Path, openai: OpenAICompatFake) -> None:
    events: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    openai.say("Hello streaming world", pieces=4)
    res = await ask(agent(tmp_path, OPENAI + "    prompt: hi\n    stream: true\n"), emit=emit)
    assert res.status == 200, res.body
    assert res.body["data"] == "Hello streaming world"
    assert openai.last.json["stream"] is True
    deltas = [e for e in events if e.get("type") == "delta"]
    assert len(deltas) >= 2
    assert all(e["resource"] == "answer" for e in deltas)
    assert "".join(e["text"] for e in deltas) == "Hello streaming world"


async def test_stream_without_listener_still_collects(tmp_path: Path, openai: OpenAICompatFake) -> None:
    openai.say("collected anyway")
    res = await ask(agent(tmp_path, OPENAI + "    prompt: hi\n    stream: true\n"))
    assert res.body["data"] == "collected anyway"


async def test_fallback_to_second_backend(tmp_path: Path, openai: OpenAICompatFake,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with anthropic_fake.AnthropicFake() as claude:
        monkeypatch.setenv("CLAUDE_URL", claude.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", anthropic_fake.KEY)
        for _ in range(2):
            openai.fail(500, "engine overloaded")
        claude.reply("from claude")
        resources = chat(OPENAI + """\
    prompt: hi
    retry:
      maxAttempts: 2
      initialDelay: 10ms
    fallback:
      - backend: anthropic
        model: claude-3-5-haiku-latest
        baseUrl: "{{ get('CLAUDE_URL', 'env') }}"
""", "llm")
        resources["response"] = """\
metadata:
  actionId: response
  requires: [llm]
run:
  apiResponse:
    success: true
    response:
      text: get('llm')
      usage: llm.usage('llm')
"""
        res = await ask(make_agent(tmp_path, resources, target="response"))
        assert res.status == 200, res.body
        data = res.body.get("data", res.body.get("response"))
        assert data["text"] == "from claude"
        assert data["usage"]["backend"] == "anthropic"
        assert data["usage"]["attempts"] == 3
        assert claude.last.json["model"] == "claude-3-5-haiku-latest"


async def test_concurrent_requests_do_not_share_state(tmp_path: Path, openai: OpenAICompatFake) -> None:
    root = agent(tmp_path, OPENAI + "    prompt: \"{{ get('q') }}\"\n")
    engine = Engine(load_project(root))

    async def one(i: int) -> Any:
        request = RequestData(method="POST", path="/api/v1/run", route="/api/v1/run", body={"q": f"n{i}"})
        return await engine.handle(request)

    results = await asyncio.gather(*(one(i) for i in range(8)))
    assert all(r.status == 200 for r in results)
    prompts = sorted(r.json["messages"][-1]["content"] for r in openai.requests)
    assert prompts == sorted(f"n{i}" for i in range(8))


async def test_streamed_tool_calls_and_usage_metadata(tmp_path: Path, openai: OpenAICompatFake) -> None:
    resources = chat(OPENAI + """\
    prompt: "{{ get('q') }}"
    stream: true
    tools:
      - name: shout
        description: Upper-case a word
        script: shoutTool
        parameters:
          word:
            type: string
            required: true
""", "llm")
    resources["shoutTool"] = """\
metadata:
  actionId: shoutTool
run:
  apiResponse:
    success: true
    response:
      shouted: "{{ upper(get('word')) }}"
"""
    resources["response"] = """\
metadata:
  actionId: response
  requires: [llm]
run:
  apiResponse:
    success: true
    response:
      text: get('llm')
      usage: llm.usage('llm')
"""
    openai.call_tools(("shout", {"word": "hello"}))
    openai.say("HELLO it is.")
    events: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    res = await ask(make_agent(tmp_path, resources, target="response"), emit=emit, q="shout hello")
    assert res.status == 200, res.body
    data = res.body.get("data", res.body.get("response"))
    assert data["text"] == "HELLO it is."
    usage = data["usage"]
    assert usage["calls"] == 2
    (call,) = usage["tool_calls"]
    assert call["name"] == "shout" and call["arguments"] == {"word": "hello"}
    assert "HELLO" in call["result"] and call["is_error"] is False
    assert (usage["input_tokens"], usage["output_tokens"]) == (20 + 11, 9 + 7)
    tool_msg = openai.last.json["messages"][-1]
    assert tool_msg["role"] == "tool" and "HELLO" in tool_msg["content"]
    assert "".join(e["text"] for e in events if e.get("type") == "delta") == "HELLO it is."
