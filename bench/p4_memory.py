"""P4 memory: resident set size of `kdeps run` (chat route) idle, and after 10,000 requests at
concurrency 50; growth in %, beside the raw aiohttp passthrough proxy put through the same load."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import (
    Result,
    Row,
    Service,
    client_session,
    fire,
    kdeps_target,
    rss_kib,
    run_async,
    services,
    start_chat_stack,
)

TITLE = "P4 memory (RSS, 10,000 requests)"
CONCURRENCY = 50
WARMUP = 200


async def _measure(service: Service, total: int) -> dict[str, float]:
    """RSS (KiB) just started, after a warm-up (the idle figure: lazy imports and pools are filled),
    and after `total` more requests."""
    target = kdeps_target(service.name, service.url)
    started = rss_kib(service.pid)
    async with client_session(CONCURRENCY) as session:
        warm = await fire(session, target, WARMUP, CONCURRENCY)
        idle = rss_kib(service.pid)
        load = await fire(session, target, total, CONCURRENCY)
    after = rss_kib(service.pid)
    return {"started_kib": started, "idle_kib": idle, "after_kib": after, "errors": warm.errors + load.errors,
            "growth_pct": (after - idle) / idle * 100 if idle else float("nan"), "rps": load.rps}


def run(quick: bool = False) -> Result:
    result = Result("p4", TITLE)
    total = 2000 if quick else 10_000
    with services() as started, tempfile.TemporaryDirectory(prefix="kdeps-bench-p4-") as tmp:
        _, passthrough, ours = start_chat_stack(started, Path(tmp))
        base = run_async(_measure(passthrough, total))
        mine = run_async(_measure(ours, total))
    result.data = {"requests": total, "kdeps": mine, "passthrough": base}
    if mine["errors"]:
        result.notes.append(f"P4: {mine['errors']} failed kdeps requests")
    result.rows.append(Row("P4", "RSS idle (after warm-up)", mine["idle_kib"] / 1024, base["idle_kib"] / 1024,
                           "passthrough", "MiB", mine["idle_kib"] / base["idle_kib"],
                           note=f"just started: {mine['started_kib'] / 1024:.1f} MiB"))
    result.rows.append(Row("P4", f"RSS growth after {total:,} requests", mine["growth_pct"],
                           base["growth_pct"], "passthrough", "%", None, "< 5 %", mine["growth_pct"] < 5))
    return result
