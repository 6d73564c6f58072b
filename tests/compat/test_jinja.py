"""Jinja2 preprocessing of workflow and resource files (author time only), as KDeps does it:
`env` and Jinja2's filters are available, KDeps runtime expressions pass through untouched, `.j2`
files are rendered too, and plain files are never altered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdeps.errors import SpecError
from kdeps.spec.jinja import preprocess, protect_runtime_expressions
from tests.agents import cli

WORKFLOW_J2 = """\
apiVersion: kdeps.io/v1
kind: Workflow
{# the description comes from the environment #}
metadata:
  name: jinja-agent
  description: "{{ env.JINJA_TEST_DESC | default('no description') }}"
  version: "1.0.0"
  targetActionId: response
settings:
  apiServer:
{% if env.JINJA_TEST_PORT %}
    portNum: {{ env.JINJA_TEST_PORT | int }}
{% else %}
    portNum: 16397
{% endif %}
    routes:
      - path: /api/demo
        methods: [GET, POST]
"""

RESPONSE_J2 = """\
actionId: response
name: API Response
apiResponse:
  success: true
  response:
    query: "{{ get('q') }}"
    upper: "{{ upper(get('q')) }}"
    method: "{{ info('method') }}"
    environment: "{{ env.JINJA_TEST_ENV | default('development') }}"
{% for name in ['alpha', 'beta'] %}
    {{ name }}: "{{ name | upper }}-{{ loop.index }}"
{% endfor %}
"""


def once(root: Path, env: dict[str, str] | None = None, **inputs: str) -> tuple[int, object, str]:
    args = ["run", str(root), "--once"]
    for key, value in inputs.items():
        args += ["--input", f"{key}={value}"]
    proc = cli(*args, env=env)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except ValueError:
        return proc.returncode, proc.stdout, proc.stderr


def j2_agent(root: Path) -> Path:
    (root / "resources").mkdir(parents=True)
    (root / "workflow.yaml.j2").write_text(WORKFLOW_J2)
    (root / "resources" / "response.yaml.j2").write_text(RESPONSE_J2)
    return root


# ---------------------------------------------------------------- through the CLI, with our own agents


def test_j2_agent_renders_env_and_keeps_runtime_calls(tmp_path: Path) -> None:
    root = j2_agent(tmp_path / "agent")
    env = {"JINJA_TEST_ENV": "staging", "JINJA_TEST_PORT": "18080"}
    code, out, err = once(root, env=env, q="hello")
    assert code == 0, err
    assert out == {"success": True, "data": {
        "query": "hello", "upper": "HELLO", "method": "GET", "environment": "staging",
        "alpha": "ALPHA-1", "beta": "BETA-2"}}


def test_j2_workflow_file_can_be_named_directly(tmp_path: Path) -> None:
    root = j2_agent(tmp_path / "agent")
    proc = cli("validate", str(root / "workflow.yaml.j2"))
    assert proc.returncode == 0, proc.stderr
    assert "Validation successful (1 resource;" in proc.stdout


@pytest.mark.parametrize("payload", ["{{ 7 * 7 }}", "{% if true %}x{% endif %}", "{{ env.HOME }}"])
def test_request_data_never_goes_through_jinja(tmp_path: Path, payload: str) -> None:
    root = j2_agent(tmp_path / "agent")
    code, out, err = once(root, q=payload)
    assert code == 0, err
    assert isinstance(out, dict) and out["data"]["query"] == payload


def test_a_rendered_yaml_file_wins_over_its_template(tmp_path: Path) -> None:
    root = j2_agent(tmp_path / "agent")
    (root / "resources" / "response.yaml").write_text(
        "actionId: response\napiResponse:\n  success: true\n  response: {from: plain}\n")
    code, out, err = once(root, q="x")
    assert code == 0, err
    assert out == {"success": True, "data": {"from": "plain"}}


def test_statement_in_a_plain_yaml_file_is_rendered(tmp_path: Path) -> None:
    root = j2_agent(tmp_path / "agent")
    (root / "workflow.yaml.j2").rename(root / "workflow.yaml")
    (root / "resources" / "response.yaml.j2").rename(root / "resources" / "response.yaml")
    code, out, err = once(root, q="hi")
    assert code == 0, err
    assert out["data"]["query"] == "hi" and out["data"]["environment"] == "development"


def test_template_errors_name_file_and_line(tmp_path: Path) -> None:
    root = j2_agent(tmp_path / "agent")
    (root / "resources" / "response.yaml.j2").write_text(RESPONSE_J2 + "{% if %}\n")
    proc = cli("validate", str(root))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    shown = root / "resources" / "response.yaml.j2"
    assert f"{shown}:13:1: Jinja2 template error:" in proc.stderr
    assert "names no resource" not in proc.stderr  # the file's documents are unknown, not missing


# ---------------------------------------------------------------- the preprocessor itself


def test_plain_files_are_returned_unchanged() -> None:
    text = "prompt: \"{{ get('q') }}\"\nport: {{ env.PORT }}\n"
    assert preprocess(text, "resources/a.yaml") is text


def test_env_and_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JINJA_TEST_PORT", "9090")
    monkeypatch.delenv("JINJA_TEST_UNSET", raising=False)
    text = ("{# c #}\nport: {{ env.JINJA_TEST_PORT | int + 1 }}\n"
            "name: {{ env.JINJA_TEST_UNSET | default('d') }}\n")
    assert preprocess(text, "w.yaml") == "\nport: 9091\nname: d\n"


@pytest.mark.parametrize(
    "expression",
    [
        "{{ get('q') }}",
        "{{ set('k', get('q')) }}",
        "{{ info('current_time') }}",
        "{{ input('x') }}",
        "{{ item.value }}",
        "{{ item('current') }}",
        "{{ request.body }}",
        "{{ workflow.name }}",
        "{{ llm.response('chat') }}",
        "{{ loop.index() }}",
        "{{ session('user') }}",
        "{{ upper(get('q')) }}",
        "{{ get('a') ?? 'fallback' }}",
        "{{ q }}",
        "{{env('HOME')}}",
    ],
)
def test_runtime_expressions_pass_through(expression: str) -> None:
    text = f"{{# jinja #}}\nvalue: \"{expression}\"\n"
    assert preprocess(text, "r.yaml") == f"\nvalue: \"{expression}\"\n"


def test_raw_blocks_are_not_wrapped_twice() -> None:
    text = "{% raw %}{{ get('a') }}{% endraw %} {{ get('b') }}"
    protected = protect_runtime_expressions(text)
    assert protected == "{% raw %}{{ get('a') }}{% endraw %} {% raw %}{{ get('b') }}{% endraw %}"
    assert preprocess(text, "a.yaml.j2") == "{{ get('a') }} {{ get('b') }}"


def test_names_the_file_binds_are_rendered() -> None:
    text = ("{% set greeting = 'hi' %}{% macro twice(x) %}{{ x }}{{ x }}{% endmacro %}"
            "{{ greeting }} {{ twice('a') }}")
    assert preprocess(text, "a.yaml") == "hi aa"


def test_the_sandbox_refuses_unsafe_attributes() -> None:
    with pytest.raises(SpecError, match="unsafe"):
        preprocess("{% set x = ''.__class__.__mro__ %}{{ x[1].__subclasses__() }}", "r.yaml")


def test_render_errors_carry_the_line() -> None:
    with pytest.raises(SpecError) as info:
        preprocess("a: 1\n{% set n = 0 %}\nb: {{ 1 // n }}\n", "r.yaml")
    assert (info.value.file, info.value.line) == ("r.yaml", 3)
    assert "division" in info.value.message


def test_a_stray_statement_marker_says_how_to_keep_it_literal() -> None:
    text = "python:\n  script: |\n    print('{%s}' % 'x')\n"
    with pytest.raises(SpecError, match=r"\{% raw %\}") as info:
        preprocess(text, "r.yaml")
    assert info.value.line == 3
    fixed = text.replace("print('{%s}' % 'x')", "{% raw %}print('{%s}' % 'x'){% endraw %}")
    assert preprocess(fixed, "r.yaml") == text
