"""YAML mistakes are reported in words a person acts on, at the line and column of the mistake,
by `kdeps validate` run as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kdeps.errors import SpecError
from kdeps.spec.yamlio import read_documents

WORKFLOW = """\
apiVersion: kdeps.io/v1
kind: Workflow
metadata:
  name: a
  version: "1.0.0"
  targetActionId: answer
settings:
  apiServerMode: true
  apiServer:
    routes:
      - path: /api
        methods: [POST]
"""

RESOURCE = """\
apiVersion: kdeps.io/v1
kind: Resource
metadata:
  actionId: answer
{extra}run:
  apiResponse:
    success: true
    response:
      data: hi
"""


def errors_of(text: str) -> list[SpecError]:
    errors: list[SpecError] = []
    read_documents(text, "f.yaml", errors)
    return errors


@pytest.mark.parametrize(("text", "line", "col"), [
    ("a:\n\tb: 1\n", 2, 1),
    ("a:\n  b: 1\n\tc: 2\n", 3, 1),
    ("a:\n  b: 1\n  \tc: 2\n", 3, 3),
])
def test_a_tab_is_named(text: str, line: int, col: int) -> None:
    [err] = errors_of(text)
    assert "a tab character; YAML indents with spaces" in err.message
    assert (err.line, err.col) == (line, col)


def test_a_tab_inside_a_quoted_value_is_fine() -> None:
    assert errors_of("a: 'x\tb'\n") == []


def test_a_key_without_colon_points_at_its_own_line() -> None:
    # PyYAML notices on the next line (4); the mistake is `d` on line 3.
    [err] = errors_of("a:\n  b: c\n  d\n  e: f\n")
    assert (err.line, err.col) == (3, 3)
    assert "'d' has no ':'" in err.message


def test_mapping_values_from_an_overindented_line_point_at_its_start() -> None:
    [err] = errors_of("a:\n  prompt: hello\n    world: x\n")
    assert (err.line, err.col) == (3, 5)
    assert "indented deeper than 'prompt' on line 2" in err.message


def test_a_colon_inside_a_value_says_quote_it() -> None:
    [err] = errors_of("metadata:\n  description: foo: bar\n")
    assert err.line == 2
    assert "put the value in quotes" in err.message


def test_a_dedented_key_says_indentation() -> None:
    [err] = errors_of("a:\n  b: 1\n c: 2\n")
    assert err.line == 3 and "indentation" in err.message


def agent(tmp_path: Path, resource: str) -> Path:
    (tmp_path / "resources").mkdir()
    (tmp_path / "workflow.yaml").write_text(WORKFLOW)
    (tmp_path / "resources" / "answer.yaml").write_text(resource)
    return tmp_path


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kdeps", "validate", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_validate_says_where_requires_belongs(tmp_path: Path) -> None:
    out = validate(agent(tmp_path, RESOURCE.format(extra="requires:\n  - other\n")))
    assert out.returncode == 2
    assert "answer.yaml:5:1: unknown key 'requires'; it belongs under metadata: write it as " \
           "metadata.requires" in out.stderr
    assert "Traceback" not in out.stderr


def test_validate_says_where_chat_belongs(tmp_path: Path) -> None:
    out = validate(agent(tmp_path, RESOURCE.format(extra="chat:\n  model: m\n  prompt: hi\n")))
    assert out.returncode == 2
    assert "unknown key 'chat'; it belongs under run: write it as run.chat" in out.stderr


def test_validate_names_a_tab(tmp_path: Path) -> None:
    out = validate(agent(tmp_path, RESOURCE.format(extra="").replace("  actionId", "\tactionId")))
    assert out.returncode == 2
    assert "answer.yaml:4:1: YAML syntax error: a tab character; YAML indents with spaces" in out.stderr


@pytest.mark.parametrize(("text", "line", "col", "words"), [
    ('chat:\n  prompt: "hello\n  model: x\n', 2, 11, "quoted value that starts here is never closed"),
    ("chat:\n  prompt:hello\n  model: x\n", 2, 3, "'prompt:hello' needs a space after ':'"),
    ("routes:\n  - path: /a\n   methods: [POST]\n", 3, 4, "does not line up with the list items"),
    ("a: [1, 2\nb: 3\n", 1, 4, "the '[' opened here is not closed"),
    ('data: {{ get("x") }}\n', 1, 7, "a value that starts with '{{' must be quoted"),
])
def test_more_mistakes_in_plain_words(text: str, line: int, col: int, words: str) -> None:
    [err] = errors_of(text)
    assert words in err.message
    assert (err.line, err.col) == (line, col)
