"""`kdeps validate` and `kdeps schema` run as a user runs them: as subprocesses."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "spec"
KDEPS = Path(sys.executable).parent / "kdeps"


def kdeps(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = str(KDEPS) if KDEPS.exists() else shutil.which("kdeps")
    assert exe, "the kdeps console script is not installed"
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_validate_ok_folder() -> None:
    out = kdeps("validate", str(DATA / "ok"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Validation successful (5 resources; layout: seed-era)"
    # only the warning that a used backend's key is unset in this environment
    assert all("_API_KEY is not set" in line for line in out.stderr.splitlines()), out.stderr


def test_validate_workflow_file_relative_to_cwd() -> None:
    out = kdeps("validate", "workflow.yaml", cwd=DATA / "quickstart")
    assert out.returncode == 0, out.stderr
    assert "Validation successful (2 resources; layout: seed-era)" in out.stdout


def test_validate_defaults_to_current_folder() -> None:
    out = kdeps("validate", cwd=DATA / "quickstart")
    assert out.returncode == 0 and "(2 resources;" in out.stdout


def test_validate_reports_every_error_with_location() -> None:
    out = kdeps("validate", "tests/data/spec/bad", cwd=DATA.parents[2])
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert lines[-1] == "validation failed: 16 errors"
    assert (
        "tests/data/spec/bad/resources/a.yaml:10:5: unknown key 'promt' in run.chat (did you mean 'prompt'?)"
        in lines
    )
    hint = "unknown key 'hostIP' in settings.apiServer (did you mean 'hostIp'?)"
    assert f"tests/data/spec/bad/workflow.yaml:9:5: {hint}" in lines
    assert any(line.endswith("dependency cycle: loopB -> loopC -> loopB") for line in lines)
    assert "Traceback" not in out.stderr


def test_validate_missing_path() -> None:
    out = kdeps("validate", "/nonexistent/agent")
    assert out.returncode == 1 and "no such file or folder" in out.stderr and "Traceback" not in out.stderr


def test_validate_never_prints_api_keys(tmp_path: Path) -> None:
    shutil.copytree(DATA / "quickstart", tmp_path / "a")
    llm = tmp_path / "a" / "resources" / "llm.yaml"
    llm.write_text(
        llm.read_text().replace("    model: llama3.2:1b\n", "    model: 7\n    apiKey: [sk-secret-123]\n")
    )
    out = kdeps("validate", str(tmp_path / "a"))
    assert out.returncode == 2 and "apiKey: expected a string" in out.stderr
    assert "sk-secret-123" not in out.stderr + out.stdout


@pytest.mark.parametrize("kind", [None, "workflow", "resource"])
def test_schema_prints_json(kind: str | None) -> None:
    out = kdeps("schema", *(["--kind", kind] if kind else []))
    assert out.returncode == 0, out.stderr
    schema = json.loads(out.stdout)
    assert schema["$schema"].startswith("http://json-schema.org/draft-07")
    if kind is None:
        assert "if" in schema
    else:
        assert schema["title"].lower() == kind


def test_schema_rejects_unknown_kind() -> None:
    out = kdeps("schema", "--kind", "widget")
    assert out.returncode == 2 and "widget" in out.stderr


def test_validate_50_resources_is_fast(tmp_path: Path) -> None:
    (tmp_path / "resources").mkdir()
    (tmp_path / "workflow.yaml").write_text(
        "apiVersion: kdeps.io/v1\nkind: Workflow\nmetadata:\n  name: big\n  targetActionId: r49\n"
        "settings:\n  apiServerMode: true\n  apiServer:\n    routes:\n      - path: /api/v1/chat\n"
    )
    for i in range(50):
        requires = f"  requires: [r{i - 1}]\n" if i else ""
        (tmp_path / "resources" / f"r{i:02}.yaml").write_text(
            f"apiVersion: kdeps.io/v1\nkind: Resource\nmetadata:\n  actionId: r{i}\n{requires}run:\n"
            "  preflightCheck:\n    validations: [\"get('q') != ''\"]\n"
            "  chat:\n    model: llama3.2:1b\n    prompt: \"{{ get('q') }}\"\n    timeoutDuration: 60s\n"
            "    scenario:\n      - role: system\n        prompt: be brief\n"
            "  onError:\n    action: retry\n    retryDelay: 1s\n"
        )
    best = min(_timed(tmp_path) for _ in range(3))
    # Budget is 0.3 s on an idle machine; the bound is loose because tests share a busy CPU.
    assert best < 1.5, f"validate took {best:.2f}s"


def _timed(path: Path) -> float:
    start = time.perf_counter()
    out = kdeps("validate", str(path))
    elapsed = time.perf_counter() - start
    assert out.returncode == 0, out.stderr
    assert "(50 resources;" in out.stdout
    return elapsed
