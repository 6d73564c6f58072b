"""Hot path (issue #15, item 10): the four figures of one chat request through `kdeps run`, each
against its baseline measured in the same run, side by side:

1. added latency p50 at concurrency 1: kdeps minus a direct call to the same fake (target <= 0.7 ms);
2. throughput at concurrency 50 against the raw aiohttp passthrough (target >= 0.8x);
3. the same throughput against the LiteLLM proxy (target >= 3x);
4. server CPU per chat request (utime + stime of the server process) against the passthrough's
   (target <= 1.5x), at concurrency 10.

    .venv/bin/python -m bench hotpath [--quick]
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.common import (
    Result,
    Row,
    Service,
    Target,
    Unavailable,
    alternate,
    client_session,
    fire,
    kdeps_target,
    median,
    openai_target,
    percentile,
    run_async,
    services,
    start_chat_stack,
    start_litellm,
)

TITLE = "Hot path: added p50, throughput vs passthrough and LiteLLM, CPU per request"
THROUGHPUT_CONCURRENCY = 50
CPU_CONCURRENCY = 10


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` so far, in seconds (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _cpu(pairs: list[tuple[Service, Target]], calls: int, rounds: int) -> dict[str, list[float]]:
    """Server CPU milliseconds per request, per round, at concurrency 10."""
    out: dict[str, list[float]] = {t.name: [] for _, t in pairs}
    async with client_session(CPU_CONCURRENCY) as session:
        for _ in range(rounds):
            for service, target in pairs:
                await fire(session, target, 300, CPU_CONCURRENCY)  # warm-up
                before = cpu_seconds(service.pid)
                load = await fire(session, target, calls, CPU_CONCURRENCY)
                spent = cpu_seconds(service.pid) - before
                if load.errors:
                    raise RuntimeError(f"{target.name}: {load.errors} errors, e.g. {load.sample_error}")
                out[target.name].append(spent / calls * 1000)
    return out


def run(quick: bool = False) -> Result:
    result = Result("hotpath", TITLE)
    latency_calls, latency_trials = (100, 3) if quick else (300, 5)
    rps_calls, rps_trials = (600, 1) if quick else (2000, 3)
    cpu_calls, cpu_rounds = (1000, 1) if quick else (3000, 3)
    with services() as started, tempfile.TemporaryDirectory(prefix="kdeps-bench-hotpath-") as tmp:
        fake, passthrough, ours = start_chat_stack(started, Path(tmp))
        kdeps, direct = kdeps_target("kdeps", ours.url), openai_target("direct", fake.url)
        through = kdeps_target("passthrough", passthrough.url)
        rps_targets = [through, kdeps]
        calls = {"passthrough": rps_calls, "kdeps": rps_calls}
        try:
            litellm = start_litellm(fake.url)
            started.append(litellm)
            rps_targets.append(openai_target("litellm", litellm.url))
            calls["litellm"] = max(200, rps_calls // 5)  # ~60 req/s: fewer calls, same trials
        except Unavailable as err:
            result.notes.append(f"LiteLLM unavailable: {err}")
        p50 = {name: [percentile(load.latencies, 0.5) for load in loads] for name, loads in
               run_async(alternate([direct, kdeps], latency_calls, 1, latency_trials)).items()}
        loads = run_async(alternate(rps_targets, calls, THROUGHPUT_CONCURRENCY, rps_trials, warmup=200))
        rps = {name: [load.rps for load in runs] for name, runs in loads.items()}
        cpu = run_async(_cpu([(ours, kdeps), (passthrough, through)], cpu_calls, cpu_rounds))

    direct50, ours50 = median(p50["direct"]), median(p50["kdeps"])
    added = ours50 - direct50
    result.rows.append(Row("HOT", "added p50 (kdeps - direct)", added * 1e3, direct50 * 1e3, "direct call",
                           "ms", ours50 / direct50 if direct50 else None, "<= 0.7 ms", added <= 0.0007,
                           note="ratio: kdeps p50 / direct p50, concurrency 1"))
    ours_rps, floor_rps = median(rps["kdeps"]), median(rps["passthrough"])
    share = ours_rps / floor_rps
    result.rows.append(Row("HOT", "throughput vs passthrough", ours_rps, floor_rps, "passthrough", "req/s",
                           share, ">= 0.8", share >= 0.8))
    if "litellm" in rps:
        times = ours_rps / median(rps["litellm"])
        result.rows.append(Row("HOT", "throughput vs LiteLLM", ours_rps, median(rps["litellm"]), "LiteLLM",
                               "req/s", times, ">= 3", times >= 3))
    ours_cpu, floor_cpu = median(cpu["kdeps"]), median(cpu["passthrough"])
    result.rows.append(Row("HOT", "server CPU per request", ours_cpu, floor_cpu, "passthrough", "ms",
                           ours_cpu / floor_cpu, "<= 1.5", ours_cpu / floor_cpu <= 1.5,
                           note=f"utime+stime of the server process, concurrency {CPU_CONCURRENCY}"))
    result.data = {"p50_s": p50, "rps": rps, "cpu_ms": cpu,
                   "calls": {"latency": latency_calls, "throughput": calls, "cpu": cpu_calls},
                   "trials": {"latency": latency_trials, "throughput": rps_trials, "cpu": cpu_rounds}}
    return result
