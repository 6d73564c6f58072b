"""Build small agents on disk for tests, and run them in-process or through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

KDEPS = [sys.executable, "-m", "kdeps"]


def make_agent(root: Path, resources: dict[str, str], *, target: str = "response",
               settings: str = "", name: str = "test-agent") -> Path:
    """Write workflow.yaml (target `target`, one route /api/v1/run) and resources/<file>.yaml for
    each entry; a value is the resource document below `kind: Resource`, as a user writes it."""
    (root / "resources").mkdir(parents=True, exist_ok=True)
    workflow = f"""\
apiVersion: kdeps.io/v1
kind: Workflow
metadata:
  name: {name}
  version: "1.0.0"
  targetActionId: {target}
settings:
  apiServerMode: true
  apiServer:
    routes:
      - path: /api/v1/run
        methods: [POST, GET]
{textwrap.indent(textwrap.dedent(settings), "  ") if settings else ""}"""
    (root / "workflow.yaml").write_text(workflow)
    for file_name, body in resources.items():
        doc = "apiVersion: kdeps.io/v1\nkind: Resource\n" + textwrap.dedent(body)
        (root / "resources" / f"{file_name}.yaml").write_text(doc)
    return root


async def run_agent(root: Path, inputs: dict[str, Any] | None = None, *, method: str = "POST",
                    route: str = "/api/v1/run", headers: dict[str, str] | None = None):
    """One request through the real engine, in-process. Returns the ResponseData."""
    from kdeps.engine import Engine, RequestData
    from kdeps.spec import load_project

    request = RequestData(method=method, path=route, route=route,
                          body=inputs if method != "GET" else None,
                          query=(inputs or {}) if method == "GET" else {},
                          headers={k.lower(): v for k, v in (headers or {}).items()}, client_ip="127.0.0.1")
    return await Engine(load_project(root)).handle(request)


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
        input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """`kdeps ARGS` as a subprocess, as a user runs it."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*KDEPS, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, input=input_text)


def once(root: Path, **inputs: Any) -> tuple[int, Any, str]:
    """`kdeps run ROOT --once --input k=v ...`: (exit code, parsed stdout JSON, stderr)."""
    args = ["run", str(root), "--once"]
    for key, value in inputs.items():
        args += ["--input", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    proc = cli(*args)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        out = proc.stdout
    return proc.returncode, out, proc.stderr
