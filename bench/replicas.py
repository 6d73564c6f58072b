"""Throughput of three `kdeps run` replicas against one, sharing one redis-server for sessions (not a
test): each configuration serves the same session-counting route behind the same round-robin proxy
(`tests/e2e/round_robin.py`, standing in for a Kubernetes Service), and also with the load generator
spreading requests over the replicas itself, which takes the proxy's own ceiling out of the figure.

    .venv/bin/python -m bench.replicas [--requests 4000] [--concurrency 100] [--trials 3]

Each figure is the median over the trials, the two configurations measured in alternating order.
On a 2-core box the replicas, the proxy, Redis and the load generator share the same CPUs, so the
ratio says how much of a second core the replicas can use, not how Kubernetes would scale.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import ROOT, Service, bench_env, free_port, kdeps_argv, median

WORKFLOW = """\
apiVersion: kdeps.io/v1
kind: Workflow
metadata:
  name: replicas-bench
  version: "1.0.0"
  targetActionId: response
settings:
  apiServerMode: true
  apiServer:
    routes:
      - path: /api/v1/visit
        methods: [POST]
    maxConcurrentRequests: 1000
  session:
    type: redis
    url: {redis_url}
"""

RESOURCE = """\
apiVersion: kdeps.io/v1
kind: Resource
metadata:
  actionId: response
run:
  exprBefore:
    - set('visits', (get('visits', 'session') ?? 0) + 1, 'session')
  apiResponse:
    success: true
    response:
      visits: get('visits', 'session')
"""


async def load(urls: list[str], total: int, concurrency: int) -> tuple[float, int]:
    """(requests per second, errors) for `total` POSTs spread round-robin over `urls`."""
    errors = 0
    counter = iter(range(total))
    turn = itertools.cycle(urls)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        async def worker() -> None:
            nonlocal errors
            for _ in counter:
                try:
                    async with http.post(next(turn) + "/api/v1/visit", json={}) as r:
                        await r.read()
                        errors += r.status != 200
                except aiohttp.ClientError:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - began), errors


def start_group(agent: Path, count: int) -> tuple[list[Service], Service]:
    replicas = []
    for i in range(count):
        port = free_port()
        replicas.append(Service(f"replica{i}", [*kdeps_argv(), "run", str(agent), "--port", str(port)],
                                port).start())
    port = free_port()
    proxy = Service("proxy", [sys.executable, "-m", "tests.e2e.round_robin", str(port),
                              *(r.url for r in replicas)], port, env=bench_env(), cwd=ROOT).start()
    return replicas, proxy


def measure(agent: Path, count: int, requests: int, concurrency: int) -> dict[str, float]:
    replicas, proxy = start_group(agent, count)
    try:
        asyncio.run(load([proxy.url], 300, 20))  # warm-up
        via_proxy, errors_p = asyncio.run(load([proxy.url], requests, concurrency))
        direct, errors_d = asyncio.run(load([r.url for r in replicas], requests, concurrency))
    finally:
        proxy.stop()
        for replica in replicas:
            replica.stop()
    return {"proxy": via_proxy, "direct": direct, "errors": errors_p + errors_d}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not on PATH (apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="kdeps-bench-replicas-") as tmp:
        redis_port = free_port()
        redis = Service("redis", [exe, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", tmp], redis_port).start()
        try:
            agent = Path(tmp) / "agent"
            (agent / "resources").mkdir(parents=True)
            (agent / "workflow.yaml").write_text(WORKFLOW.format(redis_url=f"redis://127.0.0.1:{redis_port}/0"))
            (agent / "resources" / "response.yaml").write_text(RESOURCE)
            runs: dict[int, list[dict[str, float]]] = {1: [], 3: []}
            for trial in range(args.trials):
                for count in ((1, 3) if trial % 2 == 0 else (3, 1)):
                    runs[count].append(measure(agent, count, args.requests, args.concurrency))
        finally:
            redis.stop()
    errors = sum(r["errors"] for rs in runs.values() for r in rs)
    print(f"requests      {args.requests} per run at concurrency {args.concurrency}, {args.trials} trial(s), "
          "sessions in one redis-server")
    for mode, label in (("proxy", "via proxy"), ("direct", "client-spread")):
        one, three = (median([r[mode] for r in runs[n]]) for n in (1, 3))
        print(f"{label:<14}1 replica {one:8,.0f} req/s   3 replicas {three:8,.0f} req/s   "
              f"ratio {three / one:.2f}x")
    print(f"errors        {errors}")
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
