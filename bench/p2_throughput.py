"""P2 throughput at concurrency 50: the kdeps route vs a raw aiohttp passthrough proxy (the practical
ceiling of a Python route doing the same call) vs the LiteLLM proxy; the fake's own ceiling is
measured too, to show it is not the bottleneck."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import (
    Result,
    Row,
    Unavailable,
    alternate,
    kdeps_target,
    median,
    openai_target,
    percentile,
    run_async,
    services,
    start_chat_stack,
    start_litellm,
)

TITLE = "P2 throughput (concurrency 50)"
CONCURRENCY = 50


Trial = tuple[float, float, int]


def run(quick: bool = False) -> Result:
    result = Result("p2", TITLE)
    calls, trials = (600, 1) if quick else (2000, 3)
    with services() as started, tempfile.TemporaryDirectory(prefix="kdeps-bench-p2-") as tmp:
        fake, passthrough, ours = start_chat_stack(started, Path(tmp))
        targets = [openai_target("fake", fake.url), kdeps_target("passthrough", passthrough.url),
                   kdeps_target("kdeps", ours.url)]
        try:
            litellm = start_litellm(fake.url)
            started.append(litellm)
            targets.append(openai_target("litellm", litellm.url))
        except Unavailable as err:
            result.notes.append(f"LiteLLM unavailable: {err}")
        loads = run_async(alternate(targets, calls, CONCURRENCY, trials, warmup=200, strict=False))
        figures = {name: [(load.rps, percentile(load.latencies, 0.99), load.errors) for load in runs]
                   for name, runs in loads.items()}

    rps = {name: median([t[0] for t in runs]) for name, runs in figures.items()}
    result.data = {name: {"rps": rps[name], "p99_ms": median([t[1] for t in runs]) * 1e3,
                          "errors": sum(t[2] for t in runs)} for name, runs in figures.items()}
    result.data["calls_per_trial"], result.data["trials"] = calls, trials
    errors = sum(v["errors"] for v in result.data.values() if isinstance(v, dict))
    if errors:
        result.notes.append(f"{errors} failed requests during P2 (see results.json)")
    result.rows.append(Row("P2", "fake provider ceiling", rps["fake"], rps["passthrough"], "passthrough",
                           "req/s", rps["fake"] / rps["passthrough"], note="direct client -> fake"))
    share = rps["kdeps"] / rps["passthrough"]
    result.rows.append(Row("P2", "kdeps vs raw passthrough", rps["kdeps"], rps["passthrough"], "passthrough",
                           "req/s", share, ">= 0.8", share >= 0.8))
    if "litellm" in rps:
        times = rps["kdeps"] / rps["litellm"]
        result.rows.append(Row("P2", "kdeps vs LiteLLM", rps["kdeps"], rps["litellm"], "LiteLLM", "req/s",
                               times, ">= 3", times >= 3))
    return result
