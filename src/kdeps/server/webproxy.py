"""The reverse proxy of `webServer` app routes: HTTP requests (streamed both ways) and websockets to
an app on 127.0.0.1, with hop-by-hop headers dropped and X-Forwarded-* set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
from starlette.types import Receive, Scope, Send
from yarl import URL

if TYPE_CHECKING:
    from kdeps.server.webserver import WebRoutePlan

log = logging.getLogger("kdeps.webserver")

# RFC 9110 7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade",
})
APP_HEADER_TIMEOUT = 30.0  # seconds to wait for a proxied app's response headers, as KDeps
_ENV_REF = re.compile(r"""\{\{\s*env\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\)\s*\}\}""")


class AppProxy:
    """Forwards requests of app routes; owns the one client session they share."""

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def _target(self, route: WebRoutePlan, scope: Scope, ws: bool = False) -> URL:
        raw = scope.get("raw_path") or scope["path"].encode()
        raw_path = raw.decode("latin-1")
        if route.prefix and raw_path.startswith(route.prefix):
            raw_path = raw_path[len(route.prefix):]
        if not raw_path.startswith("/"):
            raw_path = "/" + raw_path
        query = scope.get("query_string", b"").decode("latin-1")
        scheme = "ws" if ws else "http"
        return URL(f"{scheme}://127.0.0.1:{route.app_port}{raw_path}" + (f"?{query}" if query else ""),
                   encoded=True)

    def _forward_headers(self, route: WebRoutePlan, scope: Scope, *,
                         ws: bool = False) -> list[tuple[str, str]]:
        named = {n.strip().lower() for n in (header(scope, b"connection") or "").split(",")}
        out: list[tuple[str, str]] = []
        host = ""
        forwarded_for = ""
        for raw_name, raw_value in scope.get("headers", []):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if name == "host":
                host = value
                continue
            if name == "x-forwarded-for":
                forwarded_for = value
                continue
            if name in HOP_BY_HOP or name in named or (ws and name.startswith("sec-websocket-")):
                continue
            out.append((name, value))
        peer = scope["client"][0] if scope.get("client") else ""
        out.append(("x-forwarded-for", f"{forwarded_for}, {peer}" if forwarded_for else peer))
        if host:
            out.append(("x-forwarded-host", host))
        out.append(("x-forwarded-proto", "https" if scope.get("scheme") in ("https", "wss") else "http"))
        for name, value in route.headers:
            out = [(n, v) for n, v in out if n != name.lower()]
            out.append((name.lower(), _ENV_REF.sub(lambda m: os.environ.get(m.group(1), ""), value)))
        return out

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(
                auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            )
        return self.session

    async def http(self, route: WebRoutePlan, scope: Scope, receive: Receive, send: Send) -> None:
        headers = self._forward_headers(route, scope)
        has_body = header(scope, b"content-length") not in (None, "0") or \
            header(scope, b"transfer-encoding") is not None
        disconnected = asyncio.Event()

        async def request_body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected.set()
                    return
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body"):
                    return

        url = self._target(route, scope)
        try:
            async with asyncio.timeout(APP_HEADER_TIMEOUT):
                upstream = await self._session().request(
                    scope["method"], url, headers=headers, data=request_body() if has_body else None,
                    allow_redirects=False, skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding",
                                                              "Content-Type"),
                )
        except TimeoutError:
            await plain(scope, send, 504, f"Gateway Timeout: the app on port {route.app_port} is silent")
            return
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("web route %s: app on 127.0.0.1:%s unreachable: %s", route.path, route.app_port, exc)
            await plain(scope, send, 502, f"Bad Gateway: the app on port {route.app_port} is not reachable")
            return
        async with upstream:
            named = {n.strip().lower() for n in upstream.headers.get("connection", "").split(",")}
            # uvicorn sends its own Date header
            drop = HOP_BY_HOP | named | {"date"}
            kept = [(k, v) for k, v in upstream.raw_headers if k.decode("latin-1").lower() not in drop]
            await send({"type": "http.response.start", "status": upstream.status, "headers": kept})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            watcher = asyncio.create_task(_wait_disconnect(receive, disconnected))
            try:
                async for chunk in _chunks(upstream, watcher):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            finally:
                watcher.cancel()

    async def websocket(self, route: WebRoutePlan, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        offered = (header(scope, b"sec-websocket-protocol") or "").split(",")
        protocols = [p.strip() for p in offered if p.strip()]
        try:
            upstream = await self._session().ws_connect(
                self._target(route, scope, ws=True), headers=self._forward_headers(route, scope, ws=True),
                protocols=protocols, autoping=True, timeout=aiohttp.ClientWSTimeout(ws_close=5),
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("web route %s: websocket to app on port %s failed: %s", route.path, route.app_port,
                        exc)
            await send({"type": "websocket.close", "code": 1011})
            return
        await send({"type": "websocket.accept", "subprotocol": upstream.protocol})

        async def client_to_app() -> None:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    await upstream.send_bytes(message["bytes"])
                elif message.get("text") is not None:
                    await upstream.send_str(message["text"])

        async def app_to_client() -> None:
            async for message in upstream:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await send({"type": "websocket.send", "text": message.data})
                elif message.type == aiohttp.WSMsgType.BINARY:
                    await send({"type": "websocket.send", "bytes": message.data})
                else:
                    break
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": upstream.close_code or 1000})

        tasks = [asyncio.create_task(client_to_app()), asyncio.create_task(app_to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await upstream.close()


async def _chunks(upstream: aiohttp.ClientResponse, watcher: asyncio.Task[None]) -> AsyncIterator[bytes]:
    """The app's response body as it arrives; stops when the client goes away."""
    while True:
        read = asyncio.ensure_future(upstream.content.readany())
        done, _ = await asyncio.wait({read, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if read not in done:
            read.cancel()
            return
        chunk = read.result()
        if not chunk:
            return
        yield chunk


async def _wait_disconnect(receive: Receive, disconnected: asyncio.Event) -> None:
    if disconnected.is_set():
        return
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


# The two ASGI helpers below serve the web server's own answers (404, 413, 429, 503) too.
def header(scope: Scope, name: bytes) -> str | None:
    """The value of request header `name` (lower-case bytes), or None."""
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def plain(scope: Scope, send: Send, status: int, text: str,
                headers: dict[str, str] | None = None) -> None:
    """Answer `status` with a one-line text body (a websocket is closed with 1008 instead)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = (text + "\n").encode()
    raw = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})
