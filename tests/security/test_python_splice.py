"""`python`: a `{{ }}` value is a Python literal in code and plain text inside any string literal
(f-strings, raw, bytes and triple-quoted strings included), whatever it contains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.agents import make_agent, run_agent

RUN = "__import__('os').system('touch PWNED')"
PAYLOADS = [
    "{" + RUN + "}",
    "{{" + RUN + "}}",
    '"); ' + RUN + '; print("',
    "'); " + RUN + "; print('",
    '"""); ' + RUN + '; print("""',
    "\\'); " + RUN + " #",
    "\\x27); " + RUN + " #",
    "a\n" + RUN,
    "{x!r:{" + RUN + "}}",
    "héllo 日本 😀 \u2028 {{7*7}}",
    "",
]


def agent(tmp_path: Path, script: str) -> Path:
    body = "metadata: {actionId: response}\nrun:\n  python:\n    script: " + yaml.safe_dump(
        script, default_style='"').strip() + "\n"
    return make_agent(tmp_path, {"run": body}, target="response")


async def output(tmp_path: Path, script: str, value: Any) -> Any:
    root = agent(tmp_path, script)
    res = await run_agent(root, {"name": value})
    assert not (root / "PWNED").exists(), "the value ran as Python"
    assert res.status == 200, res.body
    return res.body["data"]


# Every script prints "<value>" so stdout is never read back as JSON.
SCRIPTS = {
    "f-string": ('print(f"<{{ get(\'name\') }}>")', "<{v}>"),
    "f-string text": ("print(f'<Hello {{ get('name') }}!>')", "<Hello {v}!>"),
    "f-string with fields": ('x = 1\nprint(f"<{x} {{ get(\'name\') }} {x:>3}>")', "<1 {v}   1>"),
    "plain": ("print('<{{ get('name') }}>')", "<{v}>"),
    "double": ('print("<{{ get(\'name\') }}>")', "<{v}>"),
    "triple": ('print("""<{{ get(\'name\') }}>""")', "<{v}>"),
    "raw": ("print(r'<{{ get('name') }}>')", "<{v}>"),
    "raw f-string": ("print(rf'<[{{ get('name') }}]>')", "<[{v}]>"),
    "bytes": ("import sys\nsys.stdout.write(b'<{{ get('name') }}>'.decode() + '\\n')", "<{v}>"),
    "code": ("v = {{ get('name') }}\nprint('<' + v + '>')", "<{v}>"),
    "comment": ("print('<ok>')  # {{ get('name') }}", "<ok>"),
}


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
@pytest.mark.parametrize("style", list(SCRIPTS))
async def test_value_is_data(tmp_path: Path, style: str, payload: str) -> None:
    script, expected = SCRIPTS[style]
    out = await output(tmp_path, script, payload)
    assert out == expected.format(v=payload)


async def test_structured_values_are_literals(tmp_path: Path) -> None:
    value = {"a": [1, 2.5, None, True], "q": "it's \"quoted\" {x}", "ü": {"n": -3}}
    script = "import json\ndata = {{ get('name') }}\nprint(json.dumps(data, sort_keys=True))"
    assert await output(tmp_path, script, value) == value


async def test_f_string_interpolation_of_the_author_still_works(tmp_path: Path) -> None:
    script = "n = 41\nprint(f\"{n + 1}: {{ get('name') }} {'ok'!r}\")"
    assert await output(tmp_path, script, "{n}") == "42: {n} 'ok'"


async def test_templated_script_file_stays_in_the_agent_folder(tmp_path: Path) -> None:
    (tmp_path / "evil.py").write_text("open('PWNED', 'w').close()\nprint('<ran>')\n")
    root = make_agent(tmp_path / "agent", {"run": """\
        metadata: {actionId: response}
        run:
          python:
            scriptFile: "scripts/{{ get('name') }}"
        """}, target="response")
    (root / "scripts").mkdir()
    (root / "scripts" / "hello.py").write_text("print('<hello>')\n")
    res = await run_agent(root, {"name": "../../evil.py"})
    assert res.status == 500 and not (root / "PWNED").exists()
    assert str(tmp_path) not in str(res.body)
    res = await run_agent(root, {"name": "hello.py"})
    assert res.body["data"] == "<hello>"
