"""scripts/upstream_e2e.py against a tiny stand-in for upstream's tests/e2e (our own files, same
conventions: common.sh finds `kdeps` at the project root, helpers print PASSED/FAILED/SKIPPED)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "scripts" / "upstream_e2e.py"

COMMON = """\
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
export KDEPS_BIN="$PROJECT_ROOT/kdeps"
export PASSED="${PASSED:-0}" FAILED="${FAILED:-0}" SKIPPED="${SKIPPED:-0}"
test_passed() { echo -e "\\033[0;32m✓ PASSED:\\033[0m $1"; }
test_failed() { echo -e "✗ FAILED: $1"; [ -n "${2:-}" ] && echo "  Error: $2"; }
test_skipped() { echo -e "⊘ SKIPPED: $1"; }
"""

PASSING = """\
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if "$KDEPS_BIN" --version | grep -q kdeps; then test_passed "version"; else test_failed "version"; fi
test_skipped "needs a GPU"
return 0
test_failed "never reached"
"""

FAILING = """\
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
mkdir -p "$PROJECT_ROOT/tmp-agent"
echo "kind: Workflow" > "$PROJECT_ROOT/tmp-agent/workflow.yaml"
if "$KDEPS_BIN" validate "$PROJECT_ROOT/tmp-agent" >/dev/null 2>&1; then
    test_passed "validate"
else
    test_failed "validate" "it refused"
fi
sleep 600 &
"""


def fake_upstream(tmp_path: Path) -> Path:
    e2e = tmp_path / "up" / "tests" / "e2e"
    e2e.mkdir(parents=True)
    (tmp_path / "up" / "examples").mkdir()
    (e2e / "common.sh").write_text(COMMON)
    (e2e / "test_ok.sh").write_text(PASSING)
    (e2e / "test_bad.sh").write_text(FAILING)
    return tmp_path / "up"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(HARNESS), *args], capture_output=True, text=True, timeout=120)


def test_counts_each_script_and_the_total(tmp_path: Path) -> None:
    proc = run(str(fake_upstream(tmp_path)), "test_ok", "test_bad.sh", "--trace", "--timeout", "60")
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:7] == ["test_ok", "passed", "1", "failed", "0", "skipped", "1"]
    assert lines[1].split()[:7] == ["test_bad", "passed", "0", "failed", "1", "skipped", "0"]
    assert "    FAILED: validate — it refused" in lines
    # the hidden output of the failed `kdeps validate` is shown, with our file:line:col
    assert any("apiVersion is required" in line for line in lines)
    assert lines[-1].startswith("TOTAL: passed 1  failed 1  skipped 1  (1 of 2 scripts without failures)")
    assert proc.returncode == 1
    # nothing of upstream's tree is written outside the temporary copy
    assert sorted(p.name for p in (tmp_path / "up").iterdir()) == ["examples", "tests"]


def test_refuses_a_folder_without_the_suite(tmp_path: Path) -> None:
    proc = run(str(tmp_path))
    assert proc.returncode == 2 and "no tests/e2e/common.sh" in proc.stderr


KILLS_SERVER = """\
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
AGENT="$PROJECT_ROOT/agent"; mkdir -p "$AGENT"
cat > "$AGENT/workflow.yaml" <<'EOF'
apiVersion: kdeps.io/v1
kind: Workflow
metadata: {name: a, version: "1", targetActionId: r}
settings:
  apiServer: {portNum: PORT, routes: [{path: /x, methods: [GET]}]}
resources:
  - {actionId: r, name: R, apiResponse: {response: 1}}
EOF
timeout 30 "$KDEPS_BIN" run "$AGENT" > /dev/null 2>&1 &
PID=$!
for i in $(seq 1 60); do curl -s -o /dev/null http://127.0.0.1:PORT/health && break; sleep 0.25; done
kill $PID; wait $PID 2>/dev/null
for i in $(seq 1 30); do curl -s -o /dev/null http://127.0.0.1:PORT/health || break; sleep 0.1; done
if curl -s -o /dev/null http://127.0.0.1:PORT/health; then test_failed "up"; else test_passed "down"; fi
"""


def test_a_scripts_kill_stops_the_server(tmp_path: Path) -> None:
    """Scripts stop `timeout 30 kdeps run` with `kill $PID`; that must reach our server, or it keeps
    the port (many scripts share one) until the per-call cap."""
    from tests.e2e.server_utils import free_port

    up = fake_upstream(tmp_path)
    (up / "tests" / "e2e" / "test_kill.sh").write_text(KILLS_SERVER.replace("PORT", str(free_port())))
    proc = run(str(up), "test_kill", "--cap", "60", "--timeout", "90")
    assert proc.stdout.splitlines()[0].split()[:5] == ["test_kill", "passed", "1", "failed", "0"], proc.stdout
