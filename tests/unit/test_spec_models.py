"""The models other packages read: attribute names, defaults, and what the loader gives back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from kdeps.spec import BACKENDS, DEFAULT_BACKEND, load_project
from kdeps.spec.actions import Chat, HttpClient
from kdeps.spec.resources import OnError, Resource, Run
from kdeps.spec.workflow import Workflow

DATA = Path(__file__).resolve().parents[1] / "data" / "spec"


def test_backends_constant() -> None:
    assert BACKENDS == (
        "ollama",
        "openai",
        "anthropic",
        "google",
        "cohere",
        "mistral",
        "together",
        "perplexity",
        "groq",
        "deepseek",
        "gguf",
    )
    assert DEFAULT_BACKEND == "ollama"


def test_ok_fixture_loads_in_file_order_with_locations() -> None:
    project = load_project(DATA / "ok")
    assert list(project.resources) == [
        "fetchData",
        "calcTool",
        "shellTool",
        "llmResource",
        "responseResource",
    ]
    assert project.root == (DATA / "ok").resolve()
    assert project.workflow_file == (DATA / "ok" / "workflow.yaml").resolve()
    file, line = project.locations["calcTool"]
    assert file.name == "10-fetch.yaml" and line == 22  # second document of a multi-doc file
    assert project.locations["responseResource"][0].suffix == ".yml"
    assert project.target is project.resources["responseResource"]


def test_workflow_attributes() -> None:
    wf = load_project(DATA / "ok" / "workflow.yaml").workflow
    s = wf.settings
    assert wf.metadata.target_action_id == "responseResource"
    assert s.api_server_mode is True and s.openai_compat is True
    assert s.api_server.routes[0].methods == ["POST"]  # methods are upper-cased
    assert s.api_server.auth_token == "{{ get('KDEPS_TOKEN', 'env') }}"
    assert s.api_server.max_body_size == 10 * 1024 * 1024 and s.api_server.max_concurrent_requests == 8
    assert s.api_server.cors.max_age == 43200.0 and s.api_server.cors.allow_origins == ["*"]
    a = s.agent_settings
    assert a.install_ollama is False and a.base_os == "debian" and a.models == ["llama3.2:1b"]
    assert a.env == {"DEBUG": "true", "RETRIES": "3"}  # YAML scalars kept as text
    assert s.session is not None and s.session.type == "memory" and s.session.ttl == 1800.0


def test_resource_attributes() -> None:
    res = load_project(DATA / "ok").resources
    fetch = res["fetchData"]
    assert fetch.primary is not None and fetch.primary.kind == "http_client"
    http = fetch.primary.config
    assert isinstance(http, HttpClient)
    assert http is not None and http.timeout_duration == 90.0 and http.retry.backoff == 0.5
    assert http.auth.type == "api_key" and http.auth.key == "X-API-Key"
    assert fetch.on_error.action == "continue" and "fallback" in fetch.on_error.model_fields_set
    chat = res["llmResource"].primary.config
    assert isinstance(chat, Chat)
    assert chat.backend == "openai" and chat.json_response_keys == ["answer"] and chat.max_tool_rounds == 5
    assert chat.tools[0].parameters["expression"].required is True
    assert chat.fallback[0].backend == "anthropic" and chat.retry.max_attempts == 4
    assert res["llmResource"].items == ("one", "two")
    assert res["llmResource"].check is not None and res["llmResource"].check.code == 400
    assert res["calcTool"].timeout == 10.0
    assert res["shellTool"].primary.config.env == {"A": "1"}
    assert res["responseResource"].response.meta.headers == {"X-Count": "2"}


def test_defaults() -> None:
    wf = Workflow.model_validate({"metadata": {"name": "x", "targetActionId": "y"}})
    assert wf.api_version == "kdeps.io/v1" and wf.kind == "Workflow"
    assert wf.settings.api_server.host_ip == "127.0.0.1" and wf.settings.api_server.port_num == 3000
    assert wf.settings.agent_settings.install_ollama is None and wf.settings.session is None
    assert wf.settings.api_server.cors.enable_cors is False
    r = Resource.model_validate({"metadata": {"actionId": "a"}})
    assert r.run.chat is None and r.run.api_response is None and r.items is None
    assert r.metadata.requires == []
    chat = Chat.model_validate({})
    assert chat.backend is None and chat.role == "user" and chat.stream is False
    assert OnError.model_validate({}).action == "fail"
    assert "fallback" not in OnError.model_validate({}).model_fields_set


def test_snake_case_names_are_accepted_too() -> None:
    run = Run.model_validate({"expr_before": ["set('a', 1)"], "api_response": {"response": 1}})
    assert run.expr_before == ["set('a', 1)"] and run.api_response is not None


def test_null_means_default_and_single_string_means_list() -> None:
    r = Resource.model_validate(
        {"metadata": {"actionId": "a", "requires": None}, "run": {"expr": "set('x', 1)"}}
    )
    assert r.metadata.requires == [] and r.run.expr == ["set('x', 1)"]


def test_unknown_keys_are_rejected_everywhere() -> None:
    with pytest.raises(ValidationError):
        Chat.model_validate({"promt": "x"})
    with pytest.raises(ValidationError):
        Workflow.model_validate({"metadata": {"name": "x", "targetActionId": "y"}, "settings": {"foo": 1}})


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"httpClient": {"url": "u", "auth": {"type": "bearer"}}}, "bearer auth needs token"),
        ({"httpClient": {"url": "u", "method": "FETCH"}}, "invalid HTTP method"),
        ({"python": {}}, "exactly one of script or scriptFile"),
        ({"apiResponse": {"success": 3}}, "true, false or an expression"),
        ({"chat": {"maxToolRounds": 0}}, "greater than or equal to 1"),
    ],
)
def test_action_rules(data: dict, needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        Run.model_validate(data)


def test_session_and_web_route_rules() -> None:
    base = {"metadata": {"name": "x", "targetActionId": "y"}}
    with pytest.raises(ValidationError, match="redis session needs url"):
        Workflow.model_validate({**base, "settings": {"session": {"type": "redis"}}})
    with pytest.raises(ValidationError, match="static route needs publicPath"):
        Workflow.model_validate(
            {**base, "settings": {"webServer": {"routes": [{"path": "/", "serverType": "static"}]}}}
        )


def test_workflow_file_may_hold_resources_and_yml(tmp_path: Path) -> None:
    (tmp_path / "workflow.yml").write_text(
        "apiVersion: kdeps.io/v1\nkind: Workflow\nmetadata:\n  name: t\n  targetActionId: inline\n"
        "---\napiVersion: kdeps.io/v1\nkind: Resource\nmetadata:\n  actionId: inline\n"
        "run:\n  apiResponse:\n    response: {ok: true}\n"
    )
    project = load_project(tmp_path)
    assert list(project.resources) == ["inline"] and project.locations["inline"][1] == 7


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    (tmp_path / "resources").mkdir()
    (tmp_path / "workflow.yaml").write_text(
        "apiVersion: kdeps.io/v1\nkind: Workflow\nmetadata:\n  name: t\n  targetActionId: a\n")
    (tmp_path / "resources" / "r.yaml").write_text(
        "metadata:\n  actionId: a\nitems:\n  - &base {model: m, temperature: 0.1}\n"
        "  - <<: *base\n    temperature: 0.9\n"
    )
    items = load_project(tmp_path).resources["a"].items
    assert items == ({"model": "m", "temperature": 0.1}, {"model": "m", "temperature": 0.9})


def test_spec_import_is_light() -> None:
    code = (
        "import sys, kdeps.spec\n"
        "assert 'pydantic' not in sys.modules\n"
        "from kdeps.spec import load_project\n"
        "heavy = ('aiohttp', 'starlette', 'uvicorn', 'httpx', 'redis', 'jsonschema')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
