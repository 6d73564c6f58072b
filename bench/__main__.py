"""`python -m bench all` | `python -m bench p1 p3 …` [--quick]: run measurements, print a table of
ratios against their baselines, write bench/results.json."""

from __future__ import annotations

import argparse
import importlib
import json
import math
import platform
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.common import BENCH_DIR, ROOT, Result, bench_env

MEASUREMENTS = {
    "p1": "bench.p1_latency",
    "p2": "bench.p2_throughput",
    "p3": "bench.p3_startup",
    "p4": "bench.p4_memory",
    "p5": "bench.p5_branches",
    "p6": "bench.p6_gguf",
    "p7": "bench.p7_ttfb",
    "sec": "bench.security_cost",
    "hotpath": "bench.hotpath",
}
# Scripts owned by other parts of the project, run as they are and their output kept.
SCRIPTS = {
    "load": ["bench/load.py"],
    "overhead": ["bench/llm_overhead.py"],
    "replicas": ["-m", "bench.replicas"],
}


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "%":
        return f"{value:+.1f} %"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def print_table(results: list[Result]) -> None:
    header = ("", "measure", "kdeps", "baseline", "vs", "ratio", "target", "")
    lines = [header]
    for result in results:
        for row in result.rows:
            verdict = "" if row.ok is None else ("ok" if row.ok else "MISS")
            ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
            lines.append((row.bench, row.metric, _fmt(row.value, row.unit), _fmt(row.baseline, row.unit),
                          row.baseline_name, ratio, row.target, verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print()
    for n, line in enumerate(lines):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for result in results:
        for row in result.rows:
            if row.note:
                print(f"  {row.bench} {row.metric}: {row.note}")
        for note in result.notes:
            print(f"  note: {note}")


def run_script(name: str) -> Result:
    argv = [sys.executable, *SCRIPTS[name]]
    began = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=bench_env(), capture_output=True, text=True, timeout=900)
    result = Result(name, f"{' '.join(SCRIPTS[name])}")
    result.data = {"returncode": done.returncode, "stdout": done.stdout,
                   "seconds": time.perf_counter() - began}
    print(done.stdout.rstrip())
    if done.returncode != 0:
        result.notes.append(f"{name} exited with {done.returncode}: {done.stderr.strip()[-300:]}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["all"],
                        help=f"all, or some of: {', '.join([*MEASUREMENTS, *SCRIPTS])}")
    parser.add_argument("--quick", action="store_true", help="fewer requests and trials (a smoke run)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results.json")
    args = parser.parse_args(argv)
    names = list(MEASUREMENTS) + list(SCRIPTS) if "all" in args.names else args.names
    unknown = [n for n in names if n not in MEASUREMENTS and n not in SCRIPTS]
    if unknown:
        parser.error(f"unknown measurement(s): {', '.join(unknown)}")

    results: list[Result] = []
    failed = False
    for name in names:
        began = time.perf_counter()
        if name in SCRIPTS:
            print(f"== {name}: {' '.join(SCRIPTS[name])}", flush=True)
            result = run_script(name)
        else:
            module = importlib.import_module(MEASUREMENTS[name])
            print(f"== {module.TITLE}", flush=True)
            try:
                result = module.run(quick=args.quick)
            except Exception as err:  # one broken measurement must not hide the others
                failed = True
                lines = [line for line in str(err).strip().splitlines() if line.strip()]
                reason = f"{lines[0][:200]} ... {lines[-1][:300]}" if len(lines) > 1 else str(err)[:500]
                result = Result(name, module.TITLE, notes=[f"{name} failed: {reason}"])
                traceback.print_exc(limit=2)
        result.data["seconds"] = round(time.perf_counter() - began, 1)
        for row in result.rows:
            print(f"   {row.metric}: {_fmt(row.value, row.unit)} vs {_fmt(row.baseline, row.unit)} "
                  f"({row.baseline_name})" + (f" = {row.ratio:.2f}x" if row.ratio is not None else ""))
        for note in result.notes:
            print(f"   note: {note}")
        results.append(result)

    print_table(results)
    previous = {}
    if args.out.exists():  # a partial run (`python -m bench p3`) keeps the other figures
        try:
            previous = json.loads(args.out.read_text()).get("results", {})
        except ValueError:
            previous = {}
    previous.update({r.name: {"title": r.title, "rows": [row.as_dict() for row in r.rows], "data": r.data,
                              "notes": r.notes, "at": datetime.now(UTC).isoformat(timespec="seconds")}
                     for r in results})
    report = {"machine": {"python": platform.python_version(), "platform": platform.platform(),
                          "cpus": __import__("os").cpu_count()},
              "results": previous}
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
