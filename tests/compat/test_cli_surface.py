"""The CLI as KDeps users and scripts drive it: `kdeps new --template/--force`, `kdeps bundle`,
and `kdeps validate`'s wording and exit codes (0 valid, 2 invalid), run as subprocesses."""

from __future__ import annotations

import tarfile
import textwrap
from pathlib import Path

import pytest

from tests.agents import cli

WORKFLOW = """\
apiVersion: kdeps.io/v1
kind: Workflow
metadata:
  name: surface
  version: "1.0.0"
  targetActionId: test
settings:
  apiServer:
    portNum: 16395
    routes:
      - path: /api/test
        methods: [POST]
"""


def agent(root: Path, resource: str, workflow: str = WORKFLOW) -> Path:
    (root / "resources").mkdir(parents=True, exist_ok=True)
    (root / "workflow.yaml").write_text(textwrap.dedent(workflow))
    (root / "resources" / "test.yaml").write_text(textwrap.dedent(resource))
    return root


RESPONSE = "actionId: test\nname: test\napiResponse:\n  success: true\n  response: {ok: true}\n"


# ---------------------------------------------------------------- kdeps new


def test_new_creates_a_valid_agent_in_the_current_layout(tmp_path: Path) -> None:
    target = tmp_path / "my-agent"
    proc = cli("new", str(target), "--template", "api-service")
    assert proc.returncode == 0, proc.stderr
    for rel in ("workflow.yaml", "resources/llm.yaml", "resources/response.yaml", "README.md"):
        assert (target / rel).is_file(), rel
    llm = (target / "resources" / "llm.yaml").read_text()
    assert llm.startswith("# yaml-language-server: $schema=../.kdeps-schema/resource.json\nactionId: llm\n")
    assert "validations:" in llm and "get('q')" in llm
    response = (target / "resources" / "response.yaml").read_text()
    assert "actionId: response" in response and "requires:" in response and "get('llm')" in response
    assert "targetActionId: response" in (target / "workflow.yaml").read_text()
    check = cli("validate", str(target / "workflow.yaml"))
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "Validation successful (2 resources; layout: current)"


def test_new_refuses_an_existing_folder_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "agent"
    assert cli("new", str(target)).returncode == 0
    (target / "workflow.yaml").write_text("edited\n")
    refused = cli("new", str(target))
    assert refused.returncode != 0 and "--force" in refused.stderr
    assert (target / "workflow.yaml").read_text() == "edited\n"
    forced = cli("new", str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "kind: Workflow" in (target / "workflow.yaml").read_text()


def test_new_refuses_an_unknown_template_listing_the_valid_ones(tmp_path: Path) -> None:
    proc = cli("new", str(tmp_path / "a"), "-t", "api-servce")
    assert proc.returncode == 2
    assert "Available templates: api-service" in proc.stderr and "did you mean 'api-service'" in proc.stderr
    assert not (tmp_path / "a").exists()


def test_new_says_which_templates_need_unsupported_features(tmp_path: Path) -> None:
    proc = cli("new", str(tmp_path / "a"), "--template", "sql-agent")
    assert proc.returncode == 2 and "not support" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- kdeps bundle


def test_bundle_package_and_the_package_alias(tmp_path: Path) -> None:
    root = agent(tmp_path / "a", RESPONSE)
    out1, out2 = tmp_path / "o1", tmp_path / "o2"
    bundled = cli("bundle", "package", str(root), "--output", str(out1))
    assert bundled.returncode == 0, bundled.stderr
    plain = cli("package", str(root), "--output", str(out2))
    assert plain.returncode == 0, plain.stderr
    assert [p.name for p in out1.iterdir()] == [p.name for p in out2.iterdir()] == ["surface-1.0.0.kdeps"]


def test_validate_reads_a_package_and_names_files_inside_it(tmp_path: Path) -> None:
    root = agent(tmp_path / "a", RESPONSE)
    assert cli("bundle", "package", str(root), "--output", str(tmp_path)).returncode == 0
    archive = tmp_path / "surface-1.0.0.kdeps"
    ok = cli("validate", str(archive))
    assert ok.returncode == 0 and "Validation successful (1 resource;" in ok.stdout, ok.stderr
    (root / "resources" / "test.yaml").write_text("actionId: test\nhttpClient:\n  url: 123\n")
    bad = tmp_path / "bad.kdeps"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(root / "workflow.yaml", "workflow.yaml")
        tar.add(root / "resources" / "test.yaml", "resources/test.yaml")
    proc = cli("validate", str(bad))
    assert proc.returncode == 2
    assert f"{bad}/resources/test.yaml:3:8: httpClient.url: expected a string" in proc.stderr


def test_bundle_lists_package_and_build() -> None:
    proc = cli("bundle", "--help")
    assert proc.returncode == 0 and "package" in proc.stdout and "build" in proc.stdout
    assert "Usage:" in cli("bundle", "build", "--help").stdout
    assert cli("bundle", "nope").returncode == 2


# ---------------------------------------------------------------- kdeps validate: words and exit codes


def validate(root: Path) -> tuple[int, str]:
    proc = cli("validate", str(root))
    assert "Traceback" not in proc.stderr
    return proc.returncode, proc.stderr


def test_missing_api_version_is_an_error(tmp_path: Path) -> None:
    root = agent(tmp_path, RESPONSE, WORKFLOW.replace("apiVersion: kdeps.io/v1\n", ""))
    code, err = validate(root)
    assert code == 2
    assert f"{root / 'workflow.yaml'}:1:1: apiVersion is required. Example: apiVersion: kdeps.io/v1" in err


def test_unknown_kind_is_an_error_with_the_options(tmp_path: Path) -> None:
    root = agent(tmp_path, RESPONSE, WORKFLOW.replace("kind: Workflow", "kind: InvalidKind"))
    code, err = validate(root)
    assert code == 2
    options = "Available options: [Workflow, Resource]"
    assert f"workflow.yaml:2:7: kind: invalid value 'InvalidKind'. {options}" in err
    assert "unknown key" not in err  # the document is not misread as a resource


@pytest.mark.parametrize("kind", ["Agency", "Component"])
def test_agency_and_component_documents_are_not_supported(tmp_path: Path, kind: str) -> None:
    root = agent(tmp_path, f"apiVersion: kdeps.io/v1\nkind: {kind}\nmetadata: {{name: x}}\n")
    code, err = validate(root)
    assert code == 2 and f"kind '{kind}'" in err and "not supported" in err


def test_a_component_folder_is_not_supported(tmp_path: Path) -> None:
    (tmp_path / "component.yaml").write_text("apiVersion: kdeps.io/v1\nkind: Component\n")
    code, err = validate(tmp_path)
    assert code == 2 and "components (component.yaml) are not supported" in err


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("httpClient:\n  method: GET\n  url: 123\n",
         "test.yaml:5:8: httpClient.url: expected a string, got an integer. Expected type: string. "
         "Example: url:"),
        ("chat:\n  prompt: 123\n", "chat.prompt: expected a string, got an integer. Expected type: string."),
        ("python:\n  script: 123\n", "python.script: expected a string, got an integer"),
        ('apiResponse:\n  success: "true"\n  response: {}\n', "apiResponse.success: expected a boolean"),
        ("httpClient:\n  method: 123\n  url: https://example.com\n",
         "httpClient.method: invalid HTTP method 123. Available options: [GET, POST"),
        ("httpClient:\n  method: INVALID\n  url: https://example.com\n",
         "httpClient.method: invalid HTTP method 'INVALID'. Available options: [GET,"),
        ("chat:\n  contextLength: 999\n  prompt: test\n",
         "chat.contextLength: invalid value 999. Available options: [4096, 8192"),
        ("validations:\n  methods: [INVALID]\nchat:\n  prompt: test\n",
         "validations.methods[0]: invalid HTTP"),
    ],
)
def test_wrong_values_are_errors_in_kdeps_words(tmp_path: Path, resource: str, expected: str) -> None:
    code, err = validate(agent(tmp_path, "actionId: test\nname: test\n" + resource))
    assert code == 2
    assert expected in err


def test_missing_action_id_is_required(tmp_path: Path) -> None:
    code, err = validate(agent(tmp_path, "name: test\nchat:\n  prompt: test\n"))
    assert code == 2 and "test.yaml:1:1: actionId is required" in err


def test_port_range_and_route_path(tmp_path: Path) -> None:
    workflow = WORKFLOW.replace("portNum: 16395", "portNum: 70000")
    workflow = workflow.replace("path: /api/test", "path: api/test")
    code, err = validate(agent(tmp_path, RESPONSE, workflow))
    assert code == 2
    assert "settings.apiServer.portNum: port must be between 1 and 65535, got 70000" in err
    route = "settings.apiServer.routes[0].path"
    assert f"{route}: Must start with '/', got 'api/test'. Example: /api/v1/chat" in err


def test_did_you_mean_and_location_are_kept(tmp_path: Path) -> None:
    code, err = validate(agent(tmp_path, "actionId: test\nchat:\n  promt: hi\n"))
    assert code == 2
    shown = tmp_path / "resources" / "test.yaml"
    assert f"{shown}:3:3: unknown key 'promt' in chat (did you mean 'prompt'?)" in err


def test_a_missing_path_is_exit_1_not_2(tmp_path: Path) -> None:
    code, err = validate(tmp_path / "nowhere")
    assert code == 1 and "no such file or folder" in err


def test_run_refuses_a_wrongly_typed_agent_with_the_same_words(tmp_path: Path) -> None:
    root = agent(tmp_path, "actionId: test\nname: test\nhttpClient:\n  url: 123\n")
    proc = cli("run", str(root), "--port", "1", timeout=30)  # must refuse before binding anything
    assert proc.returncode != 0
    assert "httpClient.url: expected a string, got an integer. Expected type: string" in proc.stderr
