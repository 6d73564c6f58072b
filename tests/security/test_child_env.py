"""Child processes (`exec`, `python`) get provider API keys only when the author passes them in the
step's `env:`; other environment variables still reach them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agents import make_agent, run_agent

KEY = "sk-provider-key-0123456789"


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY + "-a")
    monkeypatch.setenv("MY_SETTING", "visible")


def one(tmp_path: Path, body: str) -> Path:
    return make_agent(tmp_path, {"step": "metadata: {actionId: step}\nrun:\n" + body}, target="step")


async def test_exec_does_not_inherit_provider_keys(tmp_path: Path) -> None:
    root = one(tmp_path, """\
  exec:
    command: >-
      printf '<%s|%s|%s>' "${OPENAI_API_KEY:-none}" "${ANTHROPIC_API_KEY:-none}" "$MY_SETTING"
""")
    res = await run_agent(root)
    assert res.body["data"] == "<none|none|visible>"


async def test_python_does_not_inherit_provider_keys(tmp_path: Path) -> None:
    root = one(tmp_path, """\
  python:
    script: |
      import os
      print("<" + os.environ.get("OPENAI_API_KEY", "none") + ">")
""")
    res = await run_agent(root)
    assert res.body["data"] == "<none>"


async def test_author_passes_a_key_explicitly(tmp_path: Path) -> None:
    root = one(tmp_path, """\
  exec:
    command: "printf '<%s>' \\"$OPENAI_API_KEY\\""
    env:
      OPENAI_API_KEY: "{{ get('OPENAI_API_KEY', 'env') }}"
""")
    res = await run_agent(root)
    assert res.body["data"] == f"<{KEY}>"
