#!/bin/sh
# Run upstream KDeps' e2e scripts against our kdeps: scripts/upstream-e2e.sh UPSTREAM_DIR [script...]
# Uses the project's venv when there is one (override with PYTHON=...).
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-$here/../.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
exec "$python" "$here/upstream_e2e.py" --python "$python" "$@"
