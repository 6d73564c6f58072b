"""`exec`: a `{{ }}` value is exactly one shell word wherever the author put it (inside single
quotes, double quotes or bare), so request data never runs as shell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.agents import make_agent, run_agent

PAYLOADS = [
    "x'; touch PWNED; echo '",
    '"; touch PWNED; echo "',
    "$(touch PWNED)",
    "`touch PWNED`",
    "a\ntouch PWNED",
    "a; touch PWNED",
    "a && touch PWNED || touch PWNED",
    "'$(touch PWNED)'",
    '\\"; touch PWNED; #',
    "*",
    "-n",
    "",
    "héllo 日本 {{7*7}} ${HOME}",
]

COMMANDS = {
    "single": ("echo 'Hello {{ get('name') }}!'", "Hello {v}!"),
    "double": ('echo "Hello {{ get(\'name\') }}!"', "Hello {v}!"),
    "bare": ("printf '%s|' Hello {{ get('name') }}", "Hello|{v}|"),
    "joined": ("printf '%s|' pre{{ get('name') }}post", "pre{v}post|"),
    "two": ("printf '%s|' '{{ get('name') }}' \"{{ get('name') }}\" {{ get('name') }}", "{v}|{v}|{v}|"),
}


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
@pytest.mark.parametrize("style", list(COMMANDS))
async def test_value_is_one_word(tmp_path: Path, style: str, payload: str) -> None:
    command, expected = COMMANDS[style]
    body = "metadata: {actionId: response}\nrun:\n  exec:\n    command: " + yaml.safe_dump(
        command, default_style='"').strip() + "\n"
    root = make_agent(tmp_path, {"run": body}, target="response")
    res = await run_agent(root, {"name": payload})
    assert not (root / "PWNED").exists(), f"{style}: the payload ran as shell"
    assert res.status == 200, res.body
    out = res.body["data"]
    assert (out if isinstance(out, str) else json.dumps(out)) == expected.format(v=payload)


async def test_comment_cannot_end_early(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {"run": "metadata: {actionId: response}\nrun:\n  exec:\n    command: "
                                 "\"echo ok # {{ get('name') }}\\necho done\"\n"}, target="response")
    res = await run_agent(root, {"name": "x\ntouch PWNED"})
    assert not (root / "PWNED").exists()
    assert res.body["data"] == "ok\ndone"


async def test_nul_character_is_a_clean_error(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {"run": "metadata: {actionId: response}\nrun:\n  exec:\n    command: "
                                 "\"echo '{{ get('name') }}'\"\n"}, target="response")
    res = await run_agent(root, {"name": "a\x00b"})
    assert res.status == 400 and "NUL" in res.body["error"]["message"]
