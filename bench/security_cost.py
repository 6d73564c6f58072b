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
import time
from pathlib import Path
from typing import Any

from bench.common import (
    ANSWER_TEXT,
    ROOT,
    Result,
    Row,
    Service,
    Target,
    accepts,
    alternate,
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


class _Transport:
    """Just enough of an asyncio transport for a protocol to parse requests and write answers."""

    def __init__(self) -> None:
        self.closing = False

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"sockname": ("127.0.0.1", 1), "peername": ("127.0.0.1", 2)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


_REQUEST = (b"POST /api/v1/run HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nUser-Agent: Python/3.11 aiohttp/3.9\r\n"
            b"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nContent-Type: application/json\r\n"
            b"Content-Length: 39\r\n\r\n" + b'{"q": "What is the capital of France?"}')


async def _protocol_us(cls: type, requests: int) -> float:
    """CPU microseconds per keep-alive request through protocol `cls` with a trivial app, in-process."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    config = uvicorn.Config(app, log_config=None, lifespan="off")
    config.load()
    protocol = cls(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(_Transport())
    for n in range(requests + 500):
        if n == 500:
            began = time.process_time()
        protocol.data_received(_REQUEST)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    return (time.process_time() - began) / requests * 1e6


def protocol_cost(requests: int = 20000, rounds: int = 3) -> tuple[float, float]:
    """(uvicorn's httptools protocol, the guarded one): CPU us per request, medians of `rounds`."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from kdeps.server.limits import GuardedHttpToolsProtocol

    plain, guarded = [], []
    for _ in range(rounds):
        plain.append(run_async(_protocol_us(HttpToolsProtocol, requests)))
        guarded.append(run_async(_protocol_us(GuardedHttpToolsProtocol, requests)))
    return median(plain), median(guarded)


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
        protected = kdeps_target("protected", ours.url)
        # the baseline predates KDeps' envelope: its answer is under `response`, not `data`
        old = Target("before", before.url + "/api/v1/run", protected.body,
                     lambda data: isinstance(data, dict) and ANSWER_TEXT in str(data.get("response")))
        targets = [protected, old]
        direct = openai_target("direct", fake.url)
        p50 = {name: [percentile(load.latencies, 0.5) for load in loads] for name, loads in
               run_async(alternate([direct, *targets], p1_calls, 1, p1_trials, warmup=100,
                                   strict=False)).items()}
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
    plain_us, guarded_us = protocol_cost(5000 if quick else 20000)
    result.data["protocol_us_per_request"] = {"uvicorn": plain_us, "guarded": guarded_us}
    added_us = guarded_us - plain_us
    share = added_us / (cpu_ms["before"] * 1000)
    result.rows.append(Row("SEC", "HTTP guards: CPU added per request", added_us, cpu_ms["before"] * 1000,
                           "server CPU per request", "us", share, "<= 0.05x", share <= 0.05,
                           note=f"in-process: uvicorn's protocol {plain_us:.1f} us, guarded "
                                f"{guarded_us:.1f} us per keep-alive request"))
    cpu_ratio = cpu_ms["protected"] / cpu_ms["before"]
    result.rows.append(Row("SEC", "server CPU per request (P2 load)", cpu_ms["protected"], cpu_ms["before"],
                           f"before ({BASELINE_REF})", "ms", cpu_ratio, "<= 1.05x", cpu_ratio <= 1.05))
    return result
