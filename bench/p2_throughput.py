"""P2 throughput at concurrency 50: the kdeps route vs a raw aiohttp passthrough proxy (the practical
ceiling of a Python route doing the same call) vs the LiteLLM proxy; the fake's own ceiling is
measured too, to show it is not the bottleneck."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import (
    Result,
    Row,
    Target,
    Unavailable,
    chat_agent,
    client_session,
    fire,
    kdeps_target,
    median,
    openai_target,
    percentile,
    run_async,
    services,
    start_fake,
    start_kdeps,
    start_litellm,
    start_passthrough,
)

TITLE = "P2 throughput (concurrency 50)"
CONCURRENCY = 50


Trial = tuple[float, float, int]


async def _trials(targets: list[Target], calls: int, trials: int) -> dict[str, list[Trial]]:
    """Per target, (requests/s, p99 s, errors) of each trial, alternating the order of targets."""
    out: dict[str, list[Trial]] = {t.name: [] for t in targets}
    async with client_session(CONCURRENCY) as session:
        for t in targets:
            warm = await fire(session, t, 200, CONCURRENCY)
            if warm.errors:
                raise RuntimeError(f"{t.name} fails: {warm.sample_error}")
        for trial in range(trials):
            order = targets if trial % 2 == 0 else list(reversed(targets))
            for t in order:
                load = await fire(session, t, calls, CONCURRENCY)
                out[t.name].append((load.rps, percentile(load.latencies, 0.99), load.errors))
    return out


def run(quick: bool = False) -> Result:
    result = Result("p2", TITLE)
    calls, trials = (600, 1) if quick else (2000, 3)
    with services() as started, tempfile.TemporaryDirectory(prefix="kdeps-bench-p2-") as tmp:
        fake = start_fake()
        started.append(fake)
        passthrough = start_passthrough(fake.url)
        started.append(passthrough)
        ours = start_kdeps(chat_agent(Path(tmp) / "agent", fake.url))
        started.append(ours)
        targets = [openai_target("fake", fake.url), kdeps_target("passthrough", passthrough.url),
                   kdeps_target("kdeps", ours.url)]
        try:
            litellm = start_litellm(fake.url)
            started.append(litellm)
            targets.append(openai_target("litellm", litellm.url))
        except Unavailable as err:
            result.notes.append(f"LiteLLM unavailable: {err}")
        figures = run_async(_trials(targets, calls, trials))

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
