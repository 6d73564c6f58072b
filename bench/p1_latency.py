"""P1 added latency: one chat request through `kdeps run` minus a direct call to the same fake, at
concurrency 1 (p50 and p99), and the same for the LiteLLM proxy; ratio ours/LiteLLM."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import (
    Result,
    Row,
    Unavailable,
    alternate,
    chat_agent,
    kdeps_target,
    median,
    openai_target,
    percentile,
    run_async,
    services,
    start_fake,
    start_kdeps,
    start_litellm,
)

TITLE = "P1 added latency (concurrency 1)"


def run(quick: bool = False) -> Result:
    result = Result("p1", TITLE)
    calls, trials = (100, 3) if quick else (300, 5)
    with services() as started, tempfile.TemporaryDirectory(prefix="kdeps-bench-p1-") as tmp:
        fake = start_fake()
        started.append(fake)
        ours = start_kdeps(chat_agent(Path(tmp) / "agent", fake.url))
        started.append(ours)
        targets = [openai_target("direct", fake.url), kdeps_target("kdeps", ours.url)]
        try:
            litellm = start_litellm(fake.url)
            started.append(litellm)
            targets.append(openai_target("litellm", litellm.url))
        except Unavailable as err:
            result.notes.append(f"LiteLLM unavailable: {err}")
        loads = run_async(alternate(targets, calls, 1, trials))
        figures = {name: [(percentile(run.latencies, 0.5), percentile(run.latencies, 0.99)) for run in runs]
                   for name, runs in loads.items()}

    def stat(name: str, i: int) -> float:
        return median([trial[i] for trial in figures[name]])

    direct50, direct99 = stat("direct", 0), stat("direct", 1)
    result.data = {name: {"p50_ms": stat(name, 0) * 1e3, "p99_ms": stat(name, 1) * 1e3}
                   for name in figures}
    result.data["calls_per_trial"], result.data["trials"] = calls, trials
    added = {name: (stat(name, 0) - direct50, stat(name, 1) - direct99)
             for name in figures if name != "direct"}
    ours50, ours99 = added["kdeps"]
    result.rows.append(Row("P1", "added p50 (kdeps - direct)", ours50 * 1e3, direct50 * 1e3, "direct call",
                           "ms", ours50 / direct50 if direct50 else None, "<= 1 ms", ours50 <= 0.001))
    result.rows.append(Row("P1", "added p99 (kdeps - direct)", ours99 * 1e3, direct99 * 1e3, "direct call",
                           "ms", ours99 / direct99 if direct99 else None))
    if "litellm" in added:
        lit50, lit99 = added["litellm"]
        ratio = ours50 / lit50 if lit50 > 0 else None
        result.rows.append(Row("P1", "added p50 kdeps vs LiteLLM", ours50 * 1e3, lit50 * 1e3, "LiteLLM added",
                               "ms", ratio, "ratio <= 0.2", ratio is not None and ratio <= 0.2))
        ratio99 = ours99 / lit99 if lit99 > 0 else None
        result.rows.append(Row("P1", "added p99 kdeps vs LiteLLM", ours99 * 1e3, lit99 * 1e3, "LiteLLM added",
                               "ms", ratio99))
        result.data["added_ms"] = {k: {"p50": v[0] * 1e3, "p99": v[1] * 1e3} for k, v in added.items()}
    return result
