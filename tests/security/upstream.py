"""A real HTTP(S) server on 127.0.0.1 for httpClient tests, on its own thread and event loop.

It records each request as received (raw target, headers, body) and answers:
- `/redirect?to=URL&status=302` with a redirect to URL;
- `/count` with a JSON counter that grows on every call (for cache tests);
- anything else with JSON describing the request (`rawPath`, `method`, `headers`, `body`).
Started without `ssl_context` it speaks HTTP; with one, HTTPS.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web


@dataclass
class Seen:
    method: str
    target: str  # the request target exactly as sent (path and query, still percent-encoded)
    host: str
    headers: dict[str, str]
    body: bytes
    peer_cert: Any = None


class Upstream:
    def __init__(self, ssl_context: ssl.SSLContext | None = None, *, proxy: bool = False) -> None:
        self.ssl_context = ssl_context
        self.proxy = proxy  # answer every request itself, as a forward proxy that never forwards
        self.seen: list[Seen] = []
        self.count = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    @property
    def last(self) -> Seen:
        assert self.seen, "the upstream received no request"
        return self.seen[-1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        peer_cert = None
        if transport is not None and self.ssl_context is not None:
            ssl_object = transport.get_extra_info("ssl_object")
            peer_cert = ssl_object.getpeercert() if ssl_object else None
        seen = Seen(request.method, request.raw_path, request.headers.get("Host", ""),
                    {k.lower(): v for k, v in request.headers.items()}, await request.read(), peer_cert)
        self.seen.append(seen)
        if self.proxy:
            return web.json_response({"via": "proxy", "target": seen.target,
                                      "proxyAuth": seen.headers.get("proxy-authorization")})
        if request.path == "/redirect":
            return web.Response(status=int(request.query.get("status", "302")),
                                headers={"Location": request.query["to"]})
        if request.path == "/count":
            self.count += 1
            return web.json_response({"count": self.count}, headers={"X-Count": str(self.count)})
        if request.path == "/text":
            return web.Response(text="plain words", headers={"X-Kind": "text"})
        return web.json_response({"rawPath": seen.target, "method": seen.method, "headers": seen.headers,
                                  "body": seen.body.decode("utf-8", "replace"),
                                  "client": bool(peer_cert)}, headers={"X-Served-By": "upstream"})

    def start(self) -> Self:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def boot() -> None:
            app = web.Application()
            app.router.add_route("*", r"/{tail:[\s\S]*}", self._handle)  # newlines too
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
            await self._runner.setup()
            await web.SockSite(self._runner, sock, ssl_context=self.ssl_context).start()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(boot())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("upstream did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

