"""chat as KDeps runs it: a JSON reply that lacks `jsonResponseKeys` after one repair request is
answered with the keys null and a warning (failing is opt-in, `strictJsonKeys`); a text reply reads
both as text and as KDeps' response object; tool-call arguments land in request memory."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kdeps.actions import chat as chat_action
from kdeps.engine import Engine, RequestData
from kdeps.engine.scope import RequestState, agent_env
from kdeps.spec import load_project
from kdeps.spec.actions import Chat
from tests.agents import make_agent, run_agent
from tests.fakes.openai_compat import DEFAULT_KEY, OpenAICompatFake, serve_in_env

OPENAI = """\
    backend: openai
    baseUrl: "{{ get('FAKE_URL', 'env') }}"
    model: gpt-4o
"""
JSON_CHAT = OPENAI + """\
    prompt: "Analyze: {{ get('q') }}"
    jsonResponse: true
    jsonResponseKeys: [summary, sentiment]
"""


@pytest.fixture
def openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAICompatFake]:
    yield from serve_in_env(monkeypatch)


def chat_resource(body: str, action_id: str = "answer") -> dict[str, str]:
    return {action_id: f"metadata:\n  actionId: {action_id}\nrun:\n  chat:\n{body}"}


def request(**inputs: Any) -> RequestData:
    return RequestData(method="POST", path="/api/v1/run", route="/api/v1/run", body=inputs,
                       headers={"content-type": "application/json"})


async def run(root: Path, **inputs: Any) -> tuple[Any, RequestState]:
    """The response and the request's state (records with each resource's metadata)."""
    engine = Engine(load_project(root))
    state = RequestState(request(**inputs), agent_env(None))
    response = await engine.handle(request(**inputs))
    await engine.run(state)
    return response, state


async def test_missing_key_after_repair_is_null_with_a_warning(tmp_path: Path, openai: OpenAICompatFake,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    for _ in range(4):  # two calls per run: the answer and the repair request
        openai.say('{"summary": "fine"}')
    response, state = await run(make_agent(tmp_path, chat_resource(JSON_CHAT), target="answer"), q="meh")
    assert response.status == 200, response.body
    assert response.body["data"] == {"summary": "fine", "sentiment": None}
    assert len(openai.requests) == 4
    (warning,) = state.records["answer"].meta["warnings"]
    assert "sentiment" in warning
    assert response.body["meta"]["warnings"] == [warning]  # the client sees it too
    assert "did not return the JSON asked for" in caplog.text


async def test_reply_that_is_not_json_keeps_the_text(tmp_path: Path, openai: OpenAICompatFake) -> None:
    openai.say("I think it is nice.")
    openai.say("Really, it is nice.")
    response, _ = await run(make_agent(tmp_path, chat_resource(JSON_CHAT), target="answer"), q="meh")
    assert response.status == 200, response.body
    out = response.body["data"]
    assert out["summary"] is None and out["sentiment"] is None
    assert out["content"] == "Really, it is nice." and "not valid JSON" in out["error"]


async def test_strict_json_keys_fails(tmp_path: Path, openai: OpenAICompatFake) -> None:
    openai.say('{"summary": "fine"}')
    openai.say('{"summary": "still fine"}')
    root = make_agent(tmp_path, chat_resource(JSON_CHAT + "    strictJsonKeys: true\n"), target="answer")
    response = await Engine(load_project(root)).handle(request(q="meh"))
    assert response.status == 502
    assert "missing keys: sentiment" in response.body["error"]["message"]


async def test_text_reply_reads_as_text_and_as_response_object(tmp_path: Path,
                                                               openai: OpenAICompatFake) -> None:
    resources = chat_resource(OPENAI + "    prompt: \"{{ get('q') }}\"\n", "llm")
    resources["response"] = """\
metadata:
  actionId: response
  requires: [llm]
run:
  apiResponse:
    success: true
    response:
      text: get('llm')
      content: get('llm').message.content
      role: get('llm').message.role
      safe: "{{ safe(get('llm'), 'message.content') }}"
      templated: "said {{ get('llm').message.content }}"
      equal: get('llm') == 'Owls hunt at night.'
      upper: "{{ upper(get('llm')) }}"
"""
    openai.say("Owls hunt at night.")
    response = await Engine(load_project(make_agent(tmp_path, resources))).handle(request(q="owls"))
    assert response.status == 200, response.body
    assert response.body["data"] == {
        "text": "Owls hunt at night.", "content": "Owls hunt at night.", "role": "assistant",
        "safe": "Owls hunt at night.", "templated": "said Owls hunt at night.", "equal": True,
        "upper": "OWLS HUNT AT NIGHT."}


class _Context:
    """The ActionContext an engine hands the chat action, reduced to what this test needs."""

    def __init__(self, url: str) -> None:
        self.resource_id = "llm"
        self.workflow_dir = Path(".")
        self.request = request()
        self.project = None
        self.log = logging.getLogger("test")
        self.memory: dict[str, Any] = {}
        self.tool_runs: list[tuple[str, dict[str, Any]]] = []
        self._env = {"FAKE_URL": url, "OPENAI_API_KEY": DEFAULT_KEY}

    def render(self, value: Any, *, bare: bool = True) -> Any:
        return self._env["FAKE_URL"] if value == "{{ url }}" else value

    def evaluate(self, source: str) -> Any:
        raise AssertionError("not used")

    def env(self, name: str) -> str | None:
        return self._env.get(name)

    async def run_tool(self, action_id: str, arguments: dict[str, Any]) -> Any:
        self.tool_runs.append((action_id, dict(self.memory)))
        return {"weather": "sunny"}

    def remember(self, key: str, value: Any) -> None:
        self.memory[key] = value

    def record(self, **meta: Any) -> None:
        pass

    def deadline(self) -> float | None:
        return None

    async def emit(self, event: dict[str, Any]) -> bool:
        return False


async def test_tool_arguments_are_kept_in_memory_as_kdeps_keeps_them(openai: OpenAICompatFake) -> None:
    config = Chat.model_validate({
        "backend": "openai", "baseUrl": "{{ url }}", "model": "gpt-4o", "prompt": "Weather in Oslo?",
        "tools": [{"name": "weather", "description": "Weather of a city", "script": "weatherTool",
                   "parameters": {"city": {"type": "string", "required": True}}}]})
    openai.call_tools(("weather", {"city": "Oslo"}))
    openai.say("Sunny in Oslo.")
    ctx = _Context(openai.url)
    output = await chat_action.run(ctx, config)
    assert output == "Sunny in Oslo."
    assert ctx.memory == {"tool_weather_city": "Oslo", "city": "Oslo"}
    # stored before the tool runs, so the tool resource reads them with get()
    assert ctx.tool_runs == [("weatherTool", {"tool_weather_city": "Oslo", "city": "Oslo"})]


async def test_tool_arguments_reach_later_resources(tmp_path: Path, openai: OpenAICompatFake) -> None:
    resources = {"llm": """\
metadata:
  actionId: llm
run:
  chat:
    backend: openai
    baseUrl: "{{ get('FAKE_URL', 'env') }}"
    model: gpt-4o
    prompt: hi
    tools:
      - name: shout
        description: Upper-case a word
        script: shoutTool
        parameters:
          word: {type: string, required: true}
""", "shoutTool": """\
metadata:
  actionId: shoutTool
run:
  apiResponse:
    success: true
    response:
      shouted: "{{ upper(get('tool_shout_word')) }}"
""", "response": """\
metadata:
  actionId: response
  requires: [llm]
run:
  apiResponse:
    success: true
    response:
      word: "{{ get('word', 'memory') }}"
      text: "{{ get('llm').message.content }}"
"""}
    openai.call_tools(("shout", {"word": "hello"}))
    openai.say("HELLO it is.")
    res = await run_agent(make_agent(tmp_path, resources), {"q": "x"})
    assert res.status == 200, res.body
    assert res.body["data"] == {"word": "hello", "text": "HELLO it is."}
    assert "HELLO" in openai.last.json["messages"][-1]["content"]
