"""Cost of the request-hardening protections (issue 13): P1 added latency and P2 throughput of the chat
route, this tree against the same tree before the protections, side by side against one fake.

The baseline is `git archive` of KDEPS_BENCH_BASELINE_REF (default: 8887aa8, the last commit before
the protections) unpacked to a temp folder and run with the same interpreter and venv; the two servers
alternate order between trials and each figure is the median over trials. Target: under 5 % either way.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from bench.common import (
    ROOT,
    Result,
    Row,
    Service,
    Target,
    accepts,
    bench_env,
    chat_agent,
    client_session,
    fire,
    free_port,
    kdeps_argv,
    kdeps_target,
    median,
    openai_target,
    percentile,
    run_async,
    services,
    start_fake,
)
from bench.cpu_per_request import cpu_seconds

TITLE = "Security protections: cost on P1 and P2"
BASELINE_REF = os.environ.get("KDEPS_BENCH_BASELINE_REF", "8887aa8")
CONCURRENCY = 50


def _start(name: str, agent: Path, src: Path) -> Service:
    env = bench_env()
    env["PYTHONPATH"] = os.pathsep.join([str(src), env["PYTHONPATH"]])  # this src wins over the venv's
    port = free_port()
    service = Service(name, [*kdeps_argv(), "run", str(agent), "--port", str(port)], port, env=env,
                      cwd=agent.parent)
    return service.start(30, ready=lambda: "Starting API server on" in service.log() and accepts(port))


def _baseline_src(into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE_REF, "src"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


async def _latency(targets: list[Target], calls: int, trials: int) -> dict[str, list[float]]:
    """Per target, the p50 of each trial at concurrency 1 (order alternates between trials)."""
    out: dict[str, list[float]] = {t.name: [] for t in targets}
    async with client_session(1) as session:
        for t in targets:
            warm = await fire(session, t, 100, 1)
            if warm.errors:
                raise RuntimeError(f"{t.name} fails: {warm.sample_error}")
        for trial in range(trials):
            for t in targets if trial % 2 == 0 else list(reversed(targets)):
                load = await fire(session, t, calls, 1)
                out[t.name].append(percentile(load.latencies, 0.5))
    return out


async def _throughput(targets: list[Target], pids: dict[str, int], calls: int,
                      trials: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per target, req/s and server CPU ms per request of each trial at concurrency 50. CPU time is the
    steadier figure on a shared machine (wall time moves with whatever else runs)."""
    rps: dict[str, list[float]] = {t.name: [] for t in targets}
    cpu: dict[str, list[float]] = {t.name: [] for t in targets}
    async with client_session(CONCURRENCY) as session:
        for t in targets:
            await fire(session, t, 200, CONCURRENCY)
        for trial in range(trials):
            for t in targets if trial % 2 == 0 else list(reversed(targets)):
                spent = cpu_seconds(pids[t.name])
                load = await fire(session, t, calls, CONCURRENCY)
                spent = cpu_seconds(pids[t.name]) - spent
                if load.errors:
                    raise RuntimeError(f"{t.name}: {load.errors} errors, e.g. {load.sample_error}")
                rps[t.name].append(load.rps)
                cpu[t.name].append(spent / calls * 1000)
    return rps, cpu


def run(quick: bool = False) -> Result:
    result = Result("sec", TITLE)
    p1_calls, p1_trials = (150, 4) if quick else (400, 8)
    p2_calls, p2_trials = (800, 2) if quick else (2000, 6)
    with services() as started, tempfile.TemporaryDirectory(prefix="kdeps-bench-sec-") as tmp:
        base_src = _baseline_src(Path(tmp))
        fake = start_fake()
        started.append(fake)
        agent = chat_agent(Path(tmp) / "agent", fake.url)
        ours = _start("protected", agent, ROOT / "src")
        started.append(ours)
        before = _start("before", agent, base_src)
        started.append(before)
        targets = [kdeps_target("protected", ours.url), kdeps_target("before", before.url)]
        direct = openai_target("direct", fake.url)
        p50 = run_async(_latency([direct, *targets], p1_calls, p1_trials))
        assert ours.proc is not None and before.proc is not None
        pids = {"protected": ours.proc.pid, "before": before.proc.pid}
        rps, cpu = run_async(_throughput(targets, pids, p2_calls, p2_trials))

    direct50 = median(p50["direct"])
    added = {name: median(values) - direct50 for name, values in p50.items() if name != "direct"}
    throughput = {name: median(values) for name, values in rps.items()}
    cpu_ms = {name: median(values) for name, values in cpu.items()}
    result.data = {"baseline_ref": BASELINE_REF, "p50_ms": {k: median(v) * 1e3 for k, v in p50.items()},
                   "added_p50_ms": {k: v * 1e3 for k, v in added.items()}, "rps": throughput,
                   "cpu_ms_per_request": cpu_ms, "p1": {"calls": p1_calls, "trials": p1_trials},
                   "p2": {"calls": p2_calls, "trials": p2_trials}}
    cost1 = added["protected"] / added["before"] - 1 if added["before"] > 0 else None
    result.rows.append(Row("SEC", "P1 added p50, protected vs before", added["protected"] * 1e3,
                           added["before"] * 1e3, f"before ({BASELINE_REF})", "ms",
                           added["protected"] / added["before"] if added["before"] > 0 else None,
                           "<= 1.05x", cost1 is not None and cost1 <= 0.05))
    share = throughput["protected"] / throughput["before"]
    result.rows.append(Row("SEC", "P2 req/s, protected vs before", throughput["protected"],
                           throughput["before"], f"before ({BASELINE_REF})", "req/s", share, ">= 0.95x",
                           share >= 0.95))
    cpu_ratio = cpu_ms["protected"] / cpu_ms["before"]
    result.rows.append(Row("SEC", "server CPU per request (P2 load)", cpu_ms["protected"], cpu_ms["before"],
                           f"before ({BASELINE_REF})", "ms", cpu_ratio, "<= 1.05x", cpu_ratio <= 1.05))
    return result
