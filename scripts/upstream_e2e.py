#!/usr/bin/env python3
"""Run upstream KDeps' end-to-end scripts against this implementation's `kdeps`.

Usage: scripts/upstream_e2e.py UPSTREAM_DIR [SCRIPT ...] [--timeout S] [--keep] [--markdown]

UPSTREAM_DIR is a checkout (or extracted archive) of the public kdeps/kdeps repository. Its
tests/ and examples/ are copied into a temporary folder - nothing of it lands in this repository -
with an executable `kdeps` at the folder's root that runs ours; common.sh finds it there. Each
script is run the way upstream's tests/e2e/e2e.sh runs it (source common.sh, then the script) in
its own bash, and its ✓ PASSED / ✗ FAILED / ⊘ SKIPPED lines are counted.
Without SCRIPT arguments the scripts in scope of issue #20 run. Exit status: 0 when none failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

IN_SCOPE = [
    "test_validation", "test_scaffolding", "test_packaging", "test_execution",
    *(f"test_examples_{n}" for n in (
        "chatbot", "chatgpt_clone", "shell_exec", "control_flow", "hybrid_expressions",
        "jinja2_expressions", "optional_braces", "session_auth", "tools", "webserver_static",
        "webserver_proxy", "fformat", "vision")),
    *(f"test_features_{n}" for n in (
        "file_upload", "input_validation", "session", "error_handling", "cors", "health_check",
        "api_auth", "memory_storage", "python_executor", "multi_resource", "expression_eval",
        "items_iteration", "loop_iteration", "workflow_metadata", "route_methods", "edge_cases", "exec")),
    "test_http_client", "test_export_k8s", "test_validate_doctor",
]

# common.sh's helpers print these markers (with ANSI colours around the words).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MARKS = {"✓ PASSED:": "passed", "✗ FAILED:": "failed", "⊘ SKIPPED:": "skipped"}

# Sourced like e2e.sh does; `return` at a script's top level ends only that script.
_DRIVER = """\
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source ./common.sh
source "./$1"
"""


# Our kdeps for the scripts. A `kdeps validate` that fails is also logged to $KDEPS_E2E_TRACE, since
# the scripts send its output to /dev/null and that output is the reason a sub-test failed.
_WRAPPER = """\
#!/bin/sh
PYTHONPATH='{pythonpath}'; export PYTHONPATH
run() {{ timeout -k 2 {cap} '{python}' -m kdeps "$@"; }}
if [ -n "${{KDEPS_E2E_TRACE:-}}" ] && [ "${{1:-}}" = validate ]; then
    out=$(mktemp); err=$(mktemp)
    run "$@" >"$out" 2>"$err"; rc=$?
    [ "$rc" -ne 0 ] && {{ echo "+ kdeps $* (exit $rc)"; cat "$out" "$err"; }} >>"$KDEPS_E2E_TRACE"
    cat "$out"; cat "$err" >&2; rm -f "$out" "$err"
    exit "$rc"
fi
# exec: a script's `kill $PID` must reach the server itself, or it keeps the port until the cap
exec timeout -k 2 {cap} '{python}' -m kdeps "$@"
"""


@dataclass
class Result:
    script: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    note: str = ""
    failures: list[str] = field(default_factory=list)
    trace: str = ""


def stage(upstream: Path, python: str, cap: float, src: Path) -> Path:
    """A temporary copy of upstream's tests/ and examples/ with our `kdeps` at its root."""
    root = Path(tempfile.mkdtemp(prefix="kdeps-upstream-e2e-"))
    if (upstream / ".git").exists():
        archive = subprocess.run(["git", "-C", str(upstream), "archive", "HEAD", "tests", "examples"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    else:
        for part in ("tests", "examples"):
            if (upstream / part).is_dir():
                shutil.copytree(upstream / part, root / part, symlinks=True)
    pythonpath = os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH", "")) if p)
    wrapper = root / "kdeps"
    # Capped: a script that expects `kdeps run` to refuse a bad workflow (and runs it without a
    # timeout) would otherwise wait forever on a server that started.
    wrapper.write_text(_WRAPPER.format(pythonpath=pythonpath, cap=f"{cap:g}", python=python))
    wrapper.chmod(0o755)
    (root / "tests" / "e2e" / "_run_one.sh").write_text(_DRIVER)
    return root


def run_script(root: Path, name: str, timeout: float, verbose: bool) -> Result:
    result = Result(name)
    script = root / "tests" / "e2e" / f"{name}.sh"
    if not script.is_file():
        result.note = "script not found"
        return result
    trace = root / f"{name}.trace"
    env = {**os.environ, "NO_COLOR": "1", "KDEPS_E2E_TRACE": str(trace)}
    env.pop("KDEPS_BIN", None)
    start = time.monotonic()
    # Output goes to a file, not a pipe: background servers a script leaves behind (common.sh's mock
    # registry, whose EXIT trap a script may replace) would hold a pipe open.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(["bash", str(script.parent / "_run_one.sh"), script.name],
                                cwd=script.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            result.note = f"timed out after {timeout:.0f}s"
        with contextlib.suppress(ProcessLookupError):  # the script and whatever it left running
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.seek(0)
        out = log.read()
    result.seconds = time.monotonic() - start
    if trace.is_file():
        result.trace = trace.read_text(errors="replace")
    text = _ANSI.sub("", out.decode("utf-8", "replace"))
    lines = text.splitlines()
    for i, line in enumerate(lines):
        for mark, kind in _MARKS.items():
            if mark in line:
                setattr(result, kind, getattr(result, kind) + 1)
                if kind == "failed":
                    detail = line.split(mark, 1)[1].strip()
                    if i + 1 < len(lines) and lines[i + 1].strip().startswith("Error:"):
                        detail += " — " + lines[i + 1].strip()[len("Error:"):].strip()
                    result.failures.append(detail[:300])
    if verbose:
        sys.stdout.write(text)
    if proc.returncode not in (0, None) and not result.note and not (result.passed or result.failed):
        result.note = f"exit {proc.returncode}: " + (lines[-1][:200] if lines else "no output")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("upstream", type=Path, help="checkout of kdeps/kdeps (current main)")
    parser.add_argument("scripts", nargs="*", help="script names (default: the in-scope list)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per script (default 300)")
    parser.add_argument("--cap", type=float, default=60,
                        help="seconds any one kdeps invocation may run (default 60)")
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src",
                        help="source folder put first on PYTHONPATH (default: this checkout's src/)")
    parser.add_argument("--python", default=sys.executable, help="interpreter that runs `-m kdeps`")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--verbose", "-v", action="store_true", help="print each script's output")
    parser.add_argument("--trace", action="store_true",
                        help="print the output of every `kdeps validate` that failed (scripts hide it)")
    parser.add_argument("--markdown", action="store_true", help="print the summary as a Markdown table")
    args = parser.parse_intermixed_args(argv)

    if not (args.upstream / "tests" / "e2e" / "common.sh").is_file():
        parser.error(f"{args.upstream} has no tests/e2e/common.sh")
    names = [s.removesuffix(".sh").rsplit("/", 1)[-1] for s in args.scripts] or IN_SCOPE
    root = stage(args.upstream, args.python, args.cap, args.src.resolve())
    results: list[Result] = []
    try:
        for name in names:
            res = run_script(root, name, args.timeout, args.verbose)
            results.append(res)
            print(f"{name:42} passed {res.passed:3}  failed {res.failed:3}  skipped {res.skipped:3}"
                  f"  ({res.seconds:.0f}s){'  ' + res.note if res.note else ''}", flush=True)
            for failure in res.failures:
                print(f"    FAILED: {failure}", flush=True)
            if args.trace and res.trace:
                lines = ["      " + line for line in res.trace.splitlines()]
                print("    failed validations:\n" + "\n".join(lines), flush=True)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    total = [sum(getattr(r, k) for r in results) for k in ("passed", "failed", "skipped")]
    clean = sum(1 for r in results if not r.failed and not r.note)
    print(f"TOTAL: passed {total[0]}  failed {total[1]}  skipped {total[2]}  "
          f"({clean} of {len(results)} scripts without failures)")
    if args.markdown:
        print("\n| script | passed | failed | skipped |\n|---|---:|---:|---:|")
        for r in results:
            print(f"| {r.script} | {r.passed} | {r.failed} | {r.skipped} |")
    return 0 if total[1] == 0 and clean == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
