"""The Ollama decision table (seed rule) on agents loaded by the real loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdeps.deploy import needs_ollama, plan_build
from kdeps.spec import load_project
from tests.unit.test_deploy_support import NO_BACKEND, make_agent


def decide(tmp_path: Path, **kwargs) -> tuple[bool, str]:
    decision = needs_ollama(load_project(make_agent(tmp_path / "agent", **kwargs)))
    return decision.needed, decision.reason


@pytest.mark.parametrize(
    ("backends", "agent_settings", "expected"),
    [
        # condition 1: a chat resource uses ollama, named or by default
        (["ollama"], None, True),
        ([NO_BACKEND], None, True),
        (["openai"], None, False),
        # condition 2: models listed
        ([], {"models": ["llama3.2:1b"]}, True),
        ([], {"models": []}, False),
        (["anthropic"], {"models": ["llama3.2:1b"]}, True),
        # condition 3: installOllama true
        ([], {"installOllama": True}, True),
        (["groq"], {"installOllama": True}, True),
        # nothing asks for it
        ([], None, False),
        ([], {"installOllama": None}, False),
        # installOllama false wins over every condition
        (["ollama"], {"installOllama": False}, False),
        ([NO_BACKEND], {"installOllama": False, "models": ["llama3.2:1b"]}, False),
        ([], {"installOllama": False, "models": ["llama3.2:1b"]}, False),
        # cloud-only mixes and the embedded model need no Ollama
        (["openai", "anthropic", "google"], None, False),
        (["mistral", "gguf"], None, False),
        (["gguf"], None, False),
        # one ollama resource among cloud ones is enough
        (["openai", NO_BACKEND], None, True),
    ],
)
def test_decision_table(tmp_path: Path, backends, agent_settings, expected) -> None:
    needed, reason = decide(tmp_path, backends=backends, agent_settings=agent_settings)
    assert needed is expected, reason
    assert reason


def test_reasons_name_the_cause(tmp_path: Path) -> None:
    assert decide(tmp_path / "a", backends=[NO_BACKEND])[1].startswith("chat resource(s) chat0")
    assert "llama3.2:1b" in decide(tmp_path / "b", backends=[], agent_settings={"models": ["llama3.2:1b"]})[1]
    assert decide(tmp_path / "c", backends=[],
                  agent_settings={"installOllama": True})[1] == "installOllama: true"
    assert decide(tmp_path / "d", backends=["ollama"],
                  agent_settings={"installOllama": False})[1] == "installOllama: false"


def test_fallback_to_ollama_counts_as_use(tmp_path: Path) -> None:
    assert decide(tmp_path, backends=["openai"], fallback="ollama")[0] is True
    assert decide(tmp_path / "x", backends=["openai"], fallback="anthropic")[0] is False


def test_decision_is_truthy_and_reaches_the_plan(tmp_path: Path) -> None:
    project = load_project(make_agent(tmp_path / "agent", backends=["openai"],
                                      agent_settings={"models": ["phi3"]}))
    assert needs_ollama(project)
    plan = plan_build(project)
    assert plan.ollama and plan.models == ["phi3"]
    off = load_project(make_agent(tmp_path / "off", backends=["openai"],
                                  agent_settings={"models": ["phi3"], "installOllama": False}))
    assert not needs_ollama(off)
    assert plan_build(off).models == []
