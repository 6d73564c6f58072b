"""`kdeps validate` compiles every template and expression of the rendered blocks: broken ones are
errors with file:line:col, unknown functions get a did-you-mean, and a get() that names no resource
but is close to one is a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdeps.engine.scope import _NAMES
from kdeps.errors import SpecErrors
from kdeps.spec import load_project
from kdeps.spec.check import HOST_NAMES
from tests.agents import run_agent
from tests.compat.test_layouts import write


def errors(root: Path) -> list[str]:
    with pytest.raises(SpecErrors) as info:
        load_project(root)
    return [str(e) for e in info.value.errors]


@pytest.mark.parametrize(("value", "expected"), [
    ("\"{{ get('q' }}\"", "bad template"),
    ("\"{{ gett('q') }}\"", "unknown function 'gett' (did you mean 'get'?)"),
    ("\"get('answer'\"", "looks like an expression but does not parse"),
    ("\"Hello {{ }}\"", "empty expression"),
])
def test_broken_templates_are_load_errors(tmp_path: Path, value: str, expected: str) -> None:
    root = write(tmp_path, {"response.yaml": f"actionId: response\napiResponse:\n  response:\n"
                                             f"    data: {value}\n"})
    [error] = errors(root)
    assert "response.yaml:4:11:" in error and expected in error, error


def test_close_action_id_typo_is_a_warning(tmp_path: Path) -> None:
    root = write(tmp_path, {"fast.yaml": "actionId: fastSummary\nname: F\nexec:\n  command: printf hi\n",
                            "response.yaml": "actionId: response\nrequires: [fastSummary]\n"
                                             "apiResponse:\n  response: get('fastSumary')\nname: R\n"})
    project = load_project(root)
    [warning] = [str(w) for w in project.warnings]
    assert "response.yaml:4:13: get('fastSumary') names no resource (did you mean 'fastSummary'?)" in warning


def test_descriptions_are_not_templates(tmp_path: Path) -> None:
    root = write(tmp_path, {"response.yaml": "actionId: response\ndescription: \"uses {{ braces\"\n"
                                             "apiResponse:\n  response: 1\n"})
    assert load_project(root).resources["response"].name == ""


async def test_env_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDEPS_TEST_MODE", "blue")
    root = write(tmp_path, {"response.yaml": "actionId: response\napiResponse:\n  response:\n"
                                             "    mode: \"{{ env('KDEPS_TEST_MODE') }}\"\n"
                                             "    none: \"{{ env('KDEPS_TEST_NOPE', 'x') }}\"\n"})
    assert (await run_agent(root, {})).body["data"] == {"mode": "blue", "none": "x"}


def test_static_names_match_the_engine() -> None:
    assert set(_NAMES) == HOST_NAMES
