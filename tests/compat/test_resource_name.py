"""A current-layout resource without `name`: KDeps' schema requires one, so `kdeps validate` and
`kdeps run` warn (naming the file and line) while this implementation keeps running it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.compat.test_layouts import write
from tests.e2e.server_utils import kdeps_argv


def _kdeps(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*kdeps_argv(), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KDEPS_API_AUTH_TOKEN": ""})


def test_missing_name_is_a_warning_in_validate_and_run(tmp_path: Path) -> None:
    root = write(tmp_path, {"response.yaml": "actionId: response\napiResponse:\n  response: 1\n"})
    checked = _kdeps("validate", str(root))
    assert checked.returncode == 0
    assert "response.yaml:1:1: name is required by KDeps for a resource" in checked.stderr
    ran = _kdeps("run", str(root), "--once")
    assert ran.returncode == 0 and "name is required" in ran.stderr


def test_named_resources_do_not_warn(tmp_path: Path) -> None:
    body = "actionId: response\nname: Response\napiResponse:\n  response: 1\n"
    root = write(tmp_path, {"response.yaml": body})
    assert "name is required" not in _kdeps("validate", str(root)).stderr
