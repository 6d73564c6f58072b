"""A chat block without `backend` uses KDEPS_DEFAULT_BACKEND (agentSettings.env or the environment),
as upstream's chatbot example sets it; otherwise Ollama."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agents import run_agent
from tests.compat.test_layouts import write
from tests.fakes.openai_compat import OpenAICompatFake, serve_in_env


@pytest.fixture
def openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAICompatFake]:
    yield from serve_in_env(monkeypatch)


async def test_default_backend_comes_from_agent_settings(tmp_path: Path, openai: OpenAICompatFake) -> None:
    root = write(tmp_path, {"response.yaml": """\
        actionId: response
        chat:
          model: gpt-4o
          baseUrl: "{{ get('FAKE_URL', 'env') }}"
          prompt: "{{ get('q') }}"
        """}, workflow_extra="  agentSettings:\n    env:\n      KDEPS_DEFAULT_BACKEND: openai\n")
    openai.say("hi there")
    reply = await run_agent(root, {"q": "hello"})
    assert reply.status == 200, reply.body
    assert reply.body["data"] == "hi there" and reply.body["meta"]["backend"] == "openai"
    assert openai.last.json["messages"][-1]["content"] == "hello"
