"""P5 concurrency of independent branches: a request with two 200 ms chats in parallel branches vs a
request with one, both through `kdeps run` against a fake with 200 ms think time."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import (
    Result,
    Row,
    chat_agent,
    client_session,
    fire,
    kdeps_target,
    median,
    run_async,
    services,
    start_fake,
    start_kdeps,
)

TITLE = "P5 parallel branches (two 200 ms chats vs one)"
THINK = 0.2


async def _trials(one: str, two: str, calls: int, trials: int) -> tuple[list[float], list[float]]:
    single = kdeps_target("one", one)
    double = kdeps_target("two", two, expect="Paris. Paris.")
    singles: list[float] = []
    doubles: list[float] = []
    async with client_session(1) as session:
        for t in (single, double):
            warm = await fire(session, t, 2, 1)
            if warm.errors:
                raise RuntimeError(f"P5 {t.name}: {warm.sample_error}")
        for trial in range(trials):
            order = [(single, singles), (double, doubles)]
            for t, sink in order if trial % 2 == 0 else reversed(order):
                load = await fire(session, t, calls, 1)
                if load.errors:
                    raise RuntimeError(f"P5 {t.name}: {load.sample_error}")
                sink.append(median(load.latencies))
    return singles, doubles


def run(quick: bool = False) -> Result:
    result = Result("p5", TITLE)
    calls, trials = (3, 2) if quick else (5, 3)
    with services() as started, tempfile.TemporaryDirectory(prefix="kdeps-bench-p5-") as tmp:
        fake = start_fake(delay=THINK)
        started.append(fake)
        one = start_kdeps(chat_agent(Path(tmp) / "one", fake.url, chats=1))
        started.append(one)
        two = start_kdeps(chat_agent(Path(tmp) / "two", fake.url, chats=2))
        started.append(two)
        singles, doubles = run_async(_trials(one.url, two.url, calls, trials))
    single, double = median(singles), median(doubles)
    result.data = {"one_branch_s": single, "two_branches_s": double, "think_s": THINK}
    ratio = double / single
    result.rows.append(Row("P5", "two parallel 200 ms chats", double * 1e3, single * 1e3, "one chat", "ms",
                           ratio, "<= 1.3x", ratio <= 1.3))
    return result
