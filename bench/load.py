"""Load test of `kdeps run` (not a test): 10,000 requests at concurrency 100 against an expr/apiResponse
route, printing requests per second, p50/p99 latency, the error count and the server's RSS before/after.

    .venv/bin/python bench/load.py [--requests 10000] [--concurrency 100] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

WORKFLOW = """\
apiVersion: kdeps.io/v1
kind: Workflow
metadata:
  name: bench
  version: "1.0.0"
  targetActionId: response
settings:
  apiServerMode: true
  apiServer:
    routes:
      - path: /api/v1/echo
        methods: [POST]
    maxConcurrentRequests: 1000
  session:
    type: memory
"""

RESOURCE = """\
apiVersion: kdeps.io/v1
kind: Resource
metadata:
  actionId: response
run:
  exprBefore:
    - set('greeting', 'hello ' + get('name'))
  apiResponse:
    success: true
    response:
      greeting: get('greeting')
      n: get('n')
      requestId: info('requestId')
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    """Resident set size of `pid` and its children (workers), in KiB, from /proc."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kdeps run exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("kdeps run did not start listening")


async def load(url: str, total: int, concurrency: int) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)

    async with aiohttp.ClientSession(connector=connector) as http:
        async def worker() -> None:
            nonlocal errors
            for n in counter:
                started = time.perf_counter()
                try:
                    async with http.post(url, json={"name": "bench", "n": n}) as r:
                        body = await r.json()
                        answer = body.get("data", {})
                        if r.status != 200 or answer.get("n") != n or answer.get("greeting") != "hello bench":
                            errors += 1
                except (TimeoutError, aiohttp.ClientError, ValueError):
                    errors += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return latencies, errors, elapsed


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kdeps-bench-") as tmp:
        agent = Path(tmp) / "agent"
        (agent / "resources").mkdir(parents=True)
        (agent / "workflow.yaml").write_text(WORKFLOW)
        (agent / "resources" / "response.yaml").write_text(RESOURCE)
        port = free_port()
        kdeps = Path(sys.executable).parent / "kdeps"
        launcher = [sys.executable, "-c", "from kdeps.cli.main import main; main()"]
        argv = [str(kdeps)] if kdeps.exists() else launcher
        argv += ["run", str(agent), "--port", str(port), "--workers", str(args.workers)]
        # the access log stays on (as in production); it goes to /dev/null here
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            wait_ready(proc, port)
            url = f"http://127.0.0.1:{port}/api/v1/echo"
            asyncio.run(load(url, 200, 10))  # warm-up: imports, caches, connections
            before = rss_kib(proc.pid)
            latencies, errors, elapsed = asyncio.run(load(url, args.requests, args.concurrency))
            after = rss_kib(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    latencies.sort()
    print(f"requests      {args.requests} at concurrency {args.concurrency} ({args.workers} worker(s))")
    print(f"rps           {args.requests / elapsed:,.0f}")
    print(f"p50           {percentile(latencies, 0.50) * 1000:.2f} ms")
    print(f"p99           {percentile(latencies, 0.99) * 1000:.2f} ms")
    print(f"errors        {errors}")
    print(f"server RSS    {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB after")
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
