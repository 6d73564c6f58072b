"""A small round-robin HTTP proxy standing in for a Kubernetes Service in front of several replicas.

    python -m tests.e2e.round_robin PORT BACKEND_URL [BACKEND_URL ...]

Each request goes to the next backend in turn over a fresh connection. Like a load balancer's
"connect-failure / reset" retry policy, a request a backend never answered (connection refused or
reset before any response byte: the replica is stopping or not yet up) is sent to the next backend;
a response, whatever its status, is passed back as it is. Prints `proxy listening on PORT` when ready.
"""

from __future__ import annotations

import asyncio
import itertools
import sys

import aiohttp
from aiohttp import web

HOP_BY_HOP = frozenset({"host", "connection", "keep-alive", "content-length", "transfer-encoding",
                        "upgrade", "te", "trailer", "proxy-connection"})
RETRY_ROUNDS = 40           # tries per request: enough to ride over a replica restart
RETRY_PAUSE = 0.05


def build_app(backends: list[str]) -> web.Application:
    turn = itertools.cycle(range(len(backends)))
    state: dict[str, aiohttp.ClientSession] = {}

    async def startup(_app: web.Application) -> None:
        # No keep-alive to the replicas: a request never rides on a connection a stopping replica closed.
        connector = aiohttp.TCPConnector(force_close=True, limit=0)
        state["http"] = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                              timeout=aiohttp.ClientTimeout(total=120))

    async def cleanup(_app: web.Application) -> None:
        await state["http"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        last: Exception | None = None
        for attempt in range(RETRY_ROUNDS):
            backend = backends[next(turn)]
            try:
                async with state["http"].request(request.method, backend + request.path_qs, headers=headers,
                                                 data=body, allow_redirects=False) as upstream:
                    payload = await upstream.read()
                    out = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
                    response = web.Response(status=upstream.status, body=payload)
                    for key, value in out:
                        response.headers.add(key, value)
                    response.headers["X-Proxy-Attempts"] = str(attempt + 1)
                    return response
            except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError,
                    aiohttp.ClientOSError) as exc:
                last = exc  # never answered: safe to send elsewhere
                if attempt >= len(backends) - 1:
                    await asyncio.sleep(RETRY_PAUSE)
        return web.json_response({"proxyError": f"no backend answered: {last}"}, status=502)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main(argv: list[str]) -> None:
    port, backends = int(argv[0]), argv[1:]

    async def ready(_app: web.Application) -> None:
        print(f"proxy listening on {port}", flush=True)

    app = build_app(backends)
    app.on_startup.append(ready)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main(sys.argv[1:])
