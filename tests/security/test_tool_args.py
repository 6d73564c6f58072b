"""Tool calls: only the tool's declared parameters reach the tool resource, so a model (steered by
a client) cannot shadow request values such as `user_id`; and the calculator example evaluates
arithmetic with an `ast` whitelist, never `eval`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agents import make_agent, run_agent
from tests.fakes.openai_compat import OpenAICompatFake, serve_in_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAICompatFake]:
    yield from serve_in_env(monkeypatch)


def tool_agent(tmp_path: Path) -> Path:
    return make_agent(tmp_path, {
        "answer": """\
            metadata: {actionId: answer}
            run:
              chat:
                backend: openai
                baseUrl: "{{ get('FAKE_URL', 'env') }}"
                model: gpt-4o
                prompt: "{{ get('q') }}"
                tools:
                  - name: orders
                    script: ordersTool
                    parameters:
                      status: {type: string, required: true}
            """,
        "orders": """\
            metadata: {actionId: ordersTool}
            run:
              apiResponse:
                response:
                  user: get('user_id')
                  status: get('status')
                  role: get('role')
            """}, target="answer")


def tool_result(fake: OpenAICompatFake) -> dict:
    message = fake.last.json["messages"][-1]
    assert message["role"] == "tool"
    return json.loads(message["content"])["data"]


async def test_extra_arguments_do_not_override_request_values(tmp_path: Path, fake: OpenAICompatFake) -> None:
    fake.call_tools(("orders", {"status": "open", "user_id": "admin", "role": "root"}))
    fake.say("done")
    res = await run_agent(tool_agent(tmp_path), {"q": "my orders", "user_id": "alice"})
    assert res.status == 200, res.body
    assert tool_result(fake) == {"user": "alice", "status": "open", "role": None}


async def test_declared_arguments_still_arrive(tmp_path: Path, fake: OpenAICompatFake) -> None:
    fake.call_tools(("orders", {"status": "shipped"}))
    fake.say("done")
    res = await run_agent(tool_agent(tmp_path), {"q": "shipped?", "user_id": "bob"})
    assert res.status == 200, res.body
    assert tool_result(fake) == {"user": "bob", "status": "shipped", "role": None}


def test_calculator_example_uses_no_eval() -> None:
    text = (ROOT / "examples" / "tools-calculator" / "resources" / "calc-tool.yaml").read_text()
    assert "eval(" not in text.replace("evaluate(", "")
    assert "ast.parse" in text


CALC_ESCAPES = [
    "().__class__.__bases__[0].__subclasses__()",
    "[c for c in ().__class__.__base__.__subclasses__()][0]",
    "__import__('os').system('touch PWNED')",
    "(lambda: 1)()",
    "open('/etc/passwd').read()",
    "sqrt.__globals__",
    "'a' * 10",
    "10 ** 10 ** 10",
]


@pytest.fixture
def calculator(tmp_path: Path) -> Path:
    root = tmp_path / "calc"
    (root / "resources").mkdir(parents=True)
    (root / "resources" / "calc-tool.yaml").write_text(
        (ROOT / "examples" / "tools-calculator" / "resources" / "calc-tool.yaml").read_text())
    make_agent(root, {}, target="calcTool")
    return root


@pytest.mark.parametrize("expression", CALC_ESCAPES)
async def test_calculator_refuses_code(calculator: Path, expression: str) -> None:
    res = await run_agent(calculator, {"expression": expression})
    assert res.status == 200, res.body
    out = res.body["data"]
    assert "error" in out and "result" not in out
    assert not (calculator / "PWNED").exists()


@pytest.mark.parametrize(("expression", "value"), [("sqrt(144) * 3", 36.0), ("2 ** 10", 1024.0),
                                                   ("-(7 % 4) + pi * 0", -3.0), ("max(1, 5, 3) / 2", 2.5)])
async def test_calculator_still_computes(calculator: Path, expression: str, value: float) -> None:
    res = await run_agent(calculator, {"expression": expression})
    assert res.body["data"]["result"] == value
