"""P3 startup: `kdeps validate` on a generated 50-resource workflow, and `kdeps run` time from spawn to
the first 200 answer of a chat route; both against `python -c pass` (the interpreter's own floor)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.common import (
    WORKFLOW,
    Result,
    Row,
    Service,
    chat_agent,
    free_port,
    kdeps_argv,
    median,
    services,
    start_fake,
    write_agent,
)

TITLE = "P3 startup"
RESOURCES = 50


def big_agent(root: Path, fake_url: str, count: int = RESOURCES) -> Path:
    """A `count`-resource workflow: a DAG of expr / chat / python / httpClient steps under one response."""
    resources: dict[str, str] = {}
    for i in range(count - 1):
        requires = [f"step{j}" for j in (i - 1, i - 3) if j >= 0]
        kind = i % 4
        if kind == 0:
            body = f"""\
              expr:
                - set('v{i}', get('q') + '{i}')
              skipCondition:
                - get('skip{i}') == true"""
        elif kind == 1:
            body = f"""\
              chat:
                backend: openai
                baseUrl: "{fake_url}"
                apiKey: "sk-unused"
                model: gpt-4o-mini
                prompt: "Step {i}: {{{{ get('q') }}}}"
                timeoutDuration: 10s
                retry:
                  maxAttempts: 2
                  initialDelay: 100ms"""
        elif kind == 2:
            body = f"""\
              preflightCheck:
                validations:
                  - get('q') != ''
                error:
                  code: 400
                  message: q is required
              python:
                script: |
                  print({i} * 2)"""
        else:
            body = f"""\
              httpClient:
                method: GET
                url: "{fake_url}/v1/models"
                timeoutDuration: 5s"""
        resources[f"step{i}"] = "apiVersion: kdeps.io/v1\nkind: Resource\n" + textwrap.dedent(f"""\
            metadata:
              actionId: step{i}
              name: Step {i}
              requires: [{", ".join(requires)}]
            run:
            """) + textwrap.indent(textwrap.dedent(body), "  ") + "\n"
    resources["response"] = "apiVersion: kdeps.io/v1\nkind: Resource\n" + textwrap.dedent(f"""\
        metadata:
          actionId: response
          requires: [step{count - 2}]
        run:
          apiResponse:
            success: true
            response:
              answer: "{{{{ get('q') }}}}"
        """)
    return write_agent(root, resources, WORKFLOW)


def _time(argv: list[str], runs: int) -> tuple[float, subprocess.CompletedProcess[str]]:
    times = []
    done: subprocess.CompletedProcess[str] | None = None
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        times.append(time.perf_counter() - began)
    assert done is not None
    return median(times), done


def _first_200(agent: Path, timeout: float = 60) -> float:
    """Seconds from spawning `kdeps run` to the first 200 answer of POST /api/v1/run."""
    port = free_port()
    argv = [*kdeps_argv(), "run", str(agent), "--port", str(port)]
    service = Service("kdeps", argv, port, cwd=agent.parent)
    body = json.dumps({"q": "What is the capital of France?"}).encode()
    try:
        service.launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not service.alive():
                raise RuntimeError(f"kdeps run exited: {service.log()[-1000:]}")
            request = urllib.request.Request(f"{service.url}/api/v1/run", data=body,
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as r:
                    if r.status == 200:
                        return time.perf_counter() - service.started_at
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.005)
        raise RuntimeError("kdeps run never answered 200")
    finally:
        service.stop()


def run(quick: bool = False) -> Result:
    result = Result("p3", TITLE)
    runs = 3 if quick else 7
    floor, _ = _time([sys.executable, "-c", "pass"], runs)
    with services() as started, tempfile.TemporaryDirectory(prefix="kdeps-bench-p3-") as tmp:
        fake = start_fake()
        started.append(fake)
        big = big_agent(Path(tmp) / "big", fake.url)
        validate, done = _time([*kdeps_argv(), "validate", str(big)], runs)
        if done.returncode != 0:
            raise RuntimeError(f"kdeps validate failed on the generated workflow:\n"
                               f"{done.stdout}{done.stderr}")
        agent = chat_agent(Path(tmp) / "chat", fake.url)
        serving = median([_first_200(agent) for _ in range(max(3, runs // 2))])
    result.data = {"python_c_pass_s": floor, "validate_50_s": validate, "first_200_s": serving, "runs": runs}
    result.rows.append(Row("P3", f"validate {RESOURCES} resources", validate, floor, "python -c pass", "s",
                           validate / floor, "<= 0.3 s", validate <= 0.3))
    result.rows.append(Row("P3", "kdeps run: spawn to first 200", serving, floor, "python -c pass", "s",
                           serving / floor, "<= 1 s", serving <= 1.0))
    return result
