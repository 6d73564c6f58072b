"""Each kind of mistake in an agent is reported with its file, line, column and a useful message."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdeps.errors import SpecError, SpecErrors
from kdeps.spec import load_project

DATA = Path(__file__).resolve().parents[1] / "data" / "spec"

WORKFLOW = """\
apiVersion: kdeps.io/v1
kind: Workflow
metadata:
  name: t
  targetActionId: {target}
"""

RESPONSE = """\
metadata:
  actionId: response
run:
  apiResponse:
    response: ok
"""


def errors_of(
    tmp_path: Path, resources: dict[str, str], workflow: str | None = None, target: str = "response"
) -> list[SpecError]:
    (tmp_path / "resources").mkdir(exist_ok=True)
    (tmp_path / "workflow.yaml").write_text(
        workflow if workflow is not None else WORKFLOW.format(target=target)
    )
    for name, text in resources.items():
        (tmp_path / "resources" / name).write_text(text)
    with pytest.raises(SpecErrors) as info:
        load_project(tmp_path)
    return info.value.errors


def only(errors: list[SpecError]) -> SpecError:
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    text = RESPONSE + "---\nmetadata:\n  actionId: other\nrun: [\n"
    err = only(errors_of(tmp_path, {"r.yaml": text}))
    assert err.file.endswith("r.yaml") and err.line == 10 and err.col == 1
    assert err.message.startswith("YAML syntax error")


def test_syntax_error_does_not_cascade_into_unknown_names(tmp_path: Path) -> None:
    broken = "metadata:\n  actionId: fetch\nrun: {\n"
    user = RESPONSE.replace("  actionId: response\n", "  actionId: response\n  requires: [fetch]\n")
    err = only(errors_of(tmp_path, {"a.yaml": broken, "r.yaml": user}))
    assert err.file.endswith("a.yaml") and "YAML syntax error" in err.message


def test_yaml_tab_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    err = only(errors_of(tmp_path, {"r.yaml": RESPONSE, "s.yaml": "metadata:\n\tactionId: x\n"}))
    assert "YAML syntax error" in err.message and err.line == 2


def test_unknown_key_suggests_the_closest_key(tmp_path: Path) -> None:
    text = "metadata:\n  actionId: response\nrun:\n  chat:\n    model: m\n    promt: hi\n"
    err = only(errors_of(tmp_path, {"r.yaml": text}))
    assert (err.line, err.col) == (6, 5)
    assert err.message == "unknown key 'promt' in run.chat"
    assert err.suggestion == "prompt"
    assert str(err).endswith("r.yaml:6:5: unknown key 'promt' in run.chat (did you mean 'prompt'?)")


def test_unknown_key_case_mistake_and_workflow_keys(tmp_path: Path) -> None:
    wf = WORKFLOW.format(target="response") + "settings:\n  agentSettings:\n    baseOs: alpine\n"
    err = only(errors_of(tmp_path, {"r.yaml": RESPONSE}, workflow=wf))
    assert err.file.endswith("workflow.yaml") and (err.line, err.col) == (8, 5)
    assert err.suggestion == "baseOS"


def test_unknown_key_without_a_close_match_has_no_suggestion(tmp_path: Path) -> None:
    err = only(errors_of(tmp_path, {"r.yaml": RESPONSE + "zzzqqq: 1\n"}))
    assert err.message == "unknown key 'zzzqqq'" and err.suggestion is None and err.line == 6


def test_sql_action_is_reported_as_unsupported(tmp_path: Path) -> None:
    text = "metadata:\n  actionId: response\nrun:\n  sql:\n    query: SELECT 1\n"
    err = only(errors_of(tmp_path, {"r.yaml": text}))
    assert "`sql` is not supported by this implementation" in err.message and err.line == 4
    assert err.suggestion is None


def test_wrong_type_points_at_the_value(tmp_path: Path) -> None:
    text = "metadata:\n  actionId: response\nrun:\n  chat:\n    model: m\n    temperature: hot\n"
    err = only(errors_of(tmp_path, {"r.yaml": text}))
    assert (err.line, err.col) == (6, 18)
    assert err.message == "run.chat.temperature: expected a number, got a string"


def test_wrong_type_for_a_block(tmp_path: Path) -> None:
    text = "metadata:\n  actionId: response\nrun:\n  chat: hello\n"
    err = only(errors_of(tmp_path, {"r.yaml": text}))
    assert err.message == "run.chat: expected a mapping, got a string" and err.line == 4


def test_missing_required_field(tmp_path: Path) -> None:
    text = "metadata:\n  name: nameless\nrun:\n  apiResponse:\n    response: ok\n"
    errors = errors_of(tmp_path, {"r.yaml": text})
    # The document without an actionId, and then the target that nothing defines.
    missing = [e for e in errors if "missing" in e.message]
    assert len(missing) == 1
    assert missing[0].message == "missing required key 'actionId' in metadata" and missing[0].line == 1


def test_missing_target_action_id(tmp_path: Path) -> None:
    wf = "apiVersion: kdeps.io/v1\nkind: Workflow\nmetadata:\n  name: t\n"
    err = only(errors_of(tmp_path, {"r.yaml": RESPONSE}, workflow=wf))
    assert err.message == "missing required key 'targetActionId' in metadata"
    assert err.file.endswith("workflow.yaml") and err.line == 3


def test_unknown_target_action_id_suggests(tmp_path: Path) -> None:
    err = only(errors_of(tmp_path, {"r.yaml": RESPONSE}, target="respons"))
    assert err.file.endswith("workflow.yaml") and (err.line, err.col) == (5, 19)
    assert "targetActionId 'respons' names no resource" in err.message and err.suggestion == "response"


def test_bad_duration(tmp_path: Path) -> None:
    text = RESPONSE + "  timeoutDuration: 10 minutes\n"
    err = only(errors_of(tmp_path, {"r.yaml": text}))
    assert err.line == 6 and err.col == 20
    assert err.message.startswith("run.timeoutDuration: invalid duration '10 minutes'")


def test_bad_duration_in_workflow(tmp_path: Path) -> None:
    wf = WORKFLOW.format(target="response") + "settings:\n  session:\n    ttl: forever\n"
    err = only(errors_of(tmp_path, {"r.yaml": RESPONSE}, workflow=wf))
    assert err.line == 8 and "invalid duration 'forever'" in err.message


def test_duplicate_action_id_names_both_places(tmp_path: Path) -> None:
    err = only(errors_of(tmp_path, {"a.yaml": RESPONSE, "b.yaml": "# copy\n" + RESPONSE}))
    assert err.file.endswith("b.yaml") and err.line == 3
    assert "duplicate actionId 'response'" in err.message and "a.yaml:1" in err.message


def test_requires_missing_resource_suggests(tmp_path: Path) -> None:
    text = RESPONSE.replace("  actionId: response\n", "  actionId: response\n  requires: [fetchDta]\n")
    fetch = "metadata:\n  actionId: fetchData\n"
    err = only(errors_of(tmp_path, {"a.yaml": fetch, "r.yaml": text}))
    assert err.file.endswith("r.yaml") and (err.line, err.col) == (3, 14)
    assert "requires 'fetchDta'" in err.message and err.suggestion == "fetchData"


def test_dependency_cycle_is_printed(tmp_path: Path) -> None:
    text = (
        "metadata:\n  actionId: a\n  requires: [b]\n---\n"
        "metadata:\n  actionId: b\n  requires: [c]\n---\n"
        "metadata:\n  actionId: c\n  requires: [a]\n"
    )
    errors = errors_of(tmp_path, {"r.yaml": RESPONSE, "s.yaml": text})
    err = only(errors)
    assert err.message == "dependency cycle: a -> b -> c -> a"
    assert err.file.endswith("s.yaml") and err.line == 3


def test_self_dependency_is_a_cycle(tmp_path: Path) -> None:
    text = RESPONSE.replace("  actionId: response\n", "  actionId: response\n  requires: response\n")
    err = only(errors_of(tmp_path, {"r.yaml": text}))
    assert err.message == "dependency cycle: response -> response"


def test_two_primary_actions_are_named(tmp_path: Path) -> None:
    text = RESPONSE + "  chat:\n    model: m\n  exec:\n    command: echo\n"
    err = only(errors_of(tmp_path, {"r.yaml": text}))
    assert err.message.startswith("a resource has one primary action, but this one has 2: chat and exec")
    assert err.line == 8


def test_unknown_backend_lists_valid_names(tmp_path: Path) -> None:
    text = "metadata:\n  actionId: response\nrun:\n  chat:\n    backend: opnai\n    model: m\n"
    err = only(errors_of(tmp_path, {"r.yaml": text}))
    assert (err.line, err.col) == (5, 14)
    assert "unknown backend 'opnai'" in err.message
    assert "ollama, openai, anthropic" in err.message and "gguf" in err.message
    assert err.suggestion == "openai"


def test_unknown_backend_in_fallback(tmp_path: Path) -> None:
    text = "metadata:\n  actionId: response\nrun:\n  chat:\n    fallback:\n      - backend: claude\n"
    err = only(errors_of(tmp_path, {"r.yaml": text}))
    assert err.line == 6 and "unknown backend 'claude'" in err.message


def test_tool_script_must_name_a_resource(tmp_path: Path) -> None:
    text = (
        "metadata:\n  actionId: response\nrun:\n  chat:\n    model: m\n    tools:\n"
        "      - name: calc\n        script: calcTol\n"
    )
    tool = "metadata:\n  actionId: calcTool\nrun:\n  python:\n    script: print(1)\n"
    err = only(errors_of(tmp_path, {"r.yaml": text, "t.yaml": tool}))
    assert (err.line, err.col) == (8, 17)
    assert "tool 'calc' runs 'calcTol'" in err.message and err.suggestion == "calcTool"


def test_unknown_tool_parameter_type(tmp_path: Path) -> None:
    text = (
        "metadata:\n  actionId: response\nrun:\n  chat:\n    tools:\n      - name: calc\n"
        "        script: response\n        parameters:\n          x:\n            type: strng\n"
    )
    err = only(errors_of(tmp_path, {"r.yaml": text}))
    assert err.line == 10 and err.col == 19
    assert "invalid value 'strng'" in err.message and "integer" in err.message
    assert err.suggestion == "string"


def test_literal_value_has_suggestion(tmp_path: Path) -> None:
    text = RESPONSE + "  onError:\n    action: retyr\n"
    err = only(errors_of(tmp_path, {"r.yaml": text}))
    assert err.line == 7 and err.suggestion == "retry"


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    text = "metadata:\n  actionId: response\n  actionId: again\n"
    errors = errors_of(tmp_path, {"r.yaml": text})
    dup = [e for e in errors if "duplicate key" in e.message]
    assert dup and dup[0].line == 3 and "first defined at line 2" in dup[0].message


def test_workflow_document_in_resources_is_rejected(tmp_path: Path) -> None:
    text = RESPONSE + "---\napiVersion: kdeps.io/v1\nkind: Workflow\nmetadata:\n  name: x\n"
    err = only(errors_of(tmp_path, {"r.yaml": text}))
    assert err.line == 8 and "belongs in workflow.yaml" in err.message


def test_non_mapping_document(tmp_path: Path) -> None:
    err = only(errors_of(tmp_path, {"r.yaml": RESPONSE, "s.yaml": "- just\n- a list\n"}))
    assert err.file.endswith("s.yaml") and err.line == 1 and "must be a mapping" in err.message


def test_missing_folder_and_missing_workflow(tmp_path: Path) -> None:
    with pytest.raises(SpecErrors, match=r"no workflow\.yaml"):
        load_project(tmp_path)
    with pytest.raises(SpecErrors, match="no such file"):
        load_project(tmp_path / "nope")


def test_all_errors_are_collected_from_the_bad_fixture() -> None:
    with pytest.raises(SpecErrors) as info:
        load_project(DATA / "bad")
    found = {(Path(e.file).name, e.line, e.col): str(e) for e in info.value.errors}
    expected = {
        ("workflow.yaml", 5, 19): "targetActionId 'respnse' names no resource",
        ("workflow.yaml", 8, 14): "portNum: expected an integer",
        ("workflow.yaml", 9, 5): "(did you mean 'hostIp'?)",
        ("workflow.yaml", 11, 15): "invalid duration 'forever'",
        ("workflow.yaml", 13, 11): "invalid value 'postgres'",
        ("a.yaml", 5, 14): "(did you mean 'fetch'?)",
        ("a.yaml", 8, 14): "unknown backend 'opnai'",
        ("a.yaml", 10, 5): "(did you mean 'prompt'?)",
        ("a.yaml", 11, 18): "temperature: expected a number",
        ("a.yaml", 12, 22): "invalid duration '10 minutes'",
        ("a.yaml", 15, 17): "tool 'calc' runs 'calcTol'",
        ("a.yaml", 18, 19): "invalid value 'strng'",
        ("a.yaml", 19, 3): "chat and httpClient",
        ("a.yaml", 26, 3): "dependency cycle: loopB -> loopC -> loopB",
        ("a.yaml", 41, 1): "missing required key 'actionId'",
        ("a.yaml", 47, 13): "duplicate actionId 'llm'",
    }
    assert set(found) == set(expected), "\n".join(found.values())
    for where, text in expected.items():
        assert text in found[where]
    # Sorted: the workflow first, then resource files by name and line.
    names = [Path(e.file).name for e in info.value.errors]
    assert names == sorted(names, key=lambda n: (n != "workflow.yaml", n))
