"""Overhead of `kdeps.llm.complete` over a bare aiohttp POST to the same fast OpenAI-compatible fake.

    .venv/bin/python bench/llm_overhead.py [--calls 300] [--trials 5] [--concurrency 20]

The fake runs in its own process (so its CPU does not compete with the client for the GIL) and
answers a fixed chat completion at once. Each trial times `--calls` sequential calls, then the same
number issued `--concurrency` at a time, for the baseline and for kdeps, alternating which goes first.
Reported: median per-call wall and client CPU time over the trials, and kdeps/baseline ratios.
Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import aiohttp
from aiohttp import web

KEY = "sk-bench-0000"
ANSWER = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
}).encode()


def _serve(sock: socket.socket) -> None:
    async def chat(request: web.Request) -> web.Response:
        await request.read()
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        return web.Response(body=ANSWER, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)


async def _baseline(session: aiohttp.ClientSession, url: str) -> str:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Capital of France?"}]}
    async with session.post(url + "/v1/chat/completions", json=body,
                            headers={"Authorization": f"Bearer {KEY}"}) as resp:
        data = await resp.json()
    return data["choices"][0]["message"]["content"]


async def _timed(call: Callable[[], Awaitable[str]], calls: int, concurrency: int) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) per call for `calls` calls, `concurrency` in flight at a time."""
    start, cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < calls:
        batch = min(concurrency, calls - done)
        results = await asyncio.gather(*(call() for _ in range(batch)))
        assert all(r == "Paris." for r in results), results[:1]
        done += batch
    return (time.perf_counter() - start) / calls, (time.process_time() - cpu) / calls


async def _run(url: str, calls: int, trials: int, concurrency: int) -> None:
    from kdeps.llm import ChatRequest, Endpoint, Message, complete, transport

    endpoint = Endpoint(backend="openai", base_url=url, api_key=KEY)

    async def kdeps_call() -> str:
        messages = [Message(role="user", content="Capital of France?")]
        request = ChatRequest(model="gpt-4o-mini", messages=messages, timeout=30)
        return (await complete(request, endpoint)).text

    connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=30)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def base_call() -> str:
            return await _baseline(session, url)

        for fn in (base_call, kdeps_call):  # warm up: connections, imports, caches
            await _timed(fn, 50, concurrency)
        results: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for trial in range(trials):
            order = [("baseline", base_call), ("kdeps", kdeps_call)]
            if trial % 2:
                order.reverse()
            for conc in (1, concurrency):
                for name, fn in order:
                    results.setdefault((name, conc), []).append(await _timed(fn, calls, conc))
    await transport.aclose()

    print(f"{calls} calls x {trials} trials; median per call (wall time, and client-process CPU time,")
    print("which is less disturbed by other load on the machine); lower is better")
    print(f"{'mode':<16}{'':<6}{'bare aiohttp':>14}{'kdeps.llm':>14}{'ratio':>9}{'added':>12}")
    for conc in (1, concurrency):
        label = "sequential" if conc == 1 else f"{conc} concurrent"
        for i, kind in enumerate(("wall", "cpu")):
            base = statistics.median(r[i] for r in results[("baseline", conc)])
            ours = statistics.median(r[i] for r in results[("kdeps", conc)])
            print(f"{label:<16}{kind:<6}{base * 1e6:>12.0f}µs{ours * 1e6:>12.0f}µs{ours / base:>8.2f}x"
                  f"{(ours - base) * 1e6:>10.0f}µs")
            label = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = multiprocessing.get_context("fork").Process(target=_serve, args=(sock,), daemon=True)
    server.start()
    try:
        asyncio.run(_run(url, args.calls, args.trials, args.concurrency))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
