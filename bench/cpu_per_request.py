"""Server CPU time per chat request: `kdeps run` vs the raw aiohttp passthrough, same fake, same load.

CPU time (utime + stime of the server process) is steadier than wall time on a shared machine, so
this is the figure to compare before and after a hot-path change:

    .venv/bin/python -m bench.cpu_per_request
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import (
    Target,
    chat_agent,
    client_session,
    fire,
    kdeps_target,
    median,
    run_async,
    services,
    start_fake,
    start_kdeps,
    start_passthrough,
)
from bench.hotpath import cpu_seconds

CONCURRENCY = 10


async def _send(target: Target, total: int) -> None:
    async with client_session(CONCURRENCY) as session:
        load = await fire(session, target, total, CONCURRENCY)
    if load.errors:
        raise RuntimeError(f"{target.name}: {load.errors} errors, e.g. {load.sample_error}")


def main(requests: int = 3000, rounds: int = 3) -> None:
    with services() as started:
        fake = start_fake()
        started.append(fake)
        kdeps = start_kdeps(chat_agent(Path(tempfile.mkdtemp()), fake.url))
        started.append(kdeps)
        passthrough = start_passthrough(fake.url)
        started.append(passthrough)
        targets = [(kdeps, kdeps_target("kdeps", kdeps.url)),
                   (passthrough, kdeps_target("passthrough", passthrough.url))]
        per_request: dict[str, list[float]] = {}
        for _ in range(rounds):
            for service, target in targets:
                run_async(_send(target, 300))  # warm-up
                before = cpu_seconds(service.proc.pid)
                run_async(_send(target, requests))
                spent = cpu_seconds(service.proc.pid) - before
                per_request.setdefault(target.name, []).append(spent / requests * 1000)
    ours, floor = median(per_request["kdeps"]), median(per_request["passthrough"])
    print(f"server CPU per chat request: kdeps {ours:.3f} ms vs passthrough {floor:.3f} ms "
          f"= {ours / floor:.2f}x  (median of {rounds} rounds of {requests})")


if __name__ == "__main__":
    main()
