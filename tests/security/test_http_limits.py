"""Hostile HTTP clients: oversized heads, stalled connections, deep JSON. Through `kdeps run` as a
subprocess where the defaults matter; in-process on uvicorn with shortened timers where they are timed."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from kdeps.server.limits import Limits, protocol_with
from kdeps.server.runner import build_app
from tests.e2e.server_utils import KdepsServer, copy_agent, running, serving


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KdepsServer]:
    agent = copy_agent("api", tmp_path_factory.mktemp("limits"))
    srv = KdepsServer(agent).start()
    try:
        yield srv
    finally:
        srv.stop()


def _raw(port: int, head: bytes, timeout: float = 5.0) -> bytes:
    """Send `head` on a fresh connection; everything the server answers before closing (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_too_many_headers_is_431(server: KdepsServer) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(300))
    answer = _raw(server.port, b"GET /api/v1/echo HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert _status(answer) == 431, answer[:200]
    assert b"request head too large" in answer
    some = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(40))  # ordinary heads still pass
    answer = _raw(server.port, b"GET /api/v1/echo?q=hi HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  + some + b"\r\n")
    assert _status(answer) == 200, answer[:300]


def test_oversized_header_is_431(server: KdepsServer) -> None:
    big = b"X-Big: " + b"a" * 200_000 + b"\r\n"
    answer = _raw(server.port, b"GET /api/v1/echo HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    assert _status(answer) == 431, answer[:200]


def test_deeply_nested_json_is_a_clear_400_without_traceback(server: KdepsServer) -> None:
    body = b"[" * 50_000 + b"]" * 50_000
    head = (b"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    answer = _raw(server.port, head + body)
    assert _status(answer) == 400, answer[:300]
    error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["message"]
    assert "nested" in error
    assert "Traceback" not in server.stderr
    body = json.dumps({"q": [[[[{"a": [1, 2]}]]]], "items": [{"n": i} for i in range(200)]}).encode()
    head = (b"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    assert _status(_raw(server.port, head + body)) == 200  # ordinary nesting is accepted


def test_300_stalled_bodies_do_not_deny_service(server: KdepsServer) -> None:
    """Connections that send a head announcing a body and then nothing hold no concurrency slot
    (`maxConcurrentRequests` defaults to 256): an ordinary request still gets its answer."""
    head = (b"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{")
    stalled = []
    try:
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(head)
            stalled.append(sock)
        answer = _raw(server.port, b"GET /api/v1/echo?q=ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                      timeout=10)
        assert _status(answer) == 200, answer[:300]
        assert b'"q":"ok"' in answer
    finally:
        for sock in stalled:
            sock.close()
    time.sleep(0.5)  # the server notices the 300 clients leaving: quietly, as 499s
    assert "Traceback" not in server.stderr


# -- the timers, shortened ---------------------------------------------------------------------------

SHORT = Limits(head_timeout=0.5, body_idle_timeout=0.5, body_timeout=0.9)


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[int]:
    app, _ = build_app(copy_agent("api", tmp_path))
    async with serving(app, http=protocol_with(SHORT)) as port:
        yield port


async def _exchange(port: int, pieces: list[tuple[bytes, float]], wait: float = 4.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for data, pause in pieces:
            writer.write(data)
            await writer.drain()
            await asyncio.sleep(pause)
        return await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()


async def test_a_head_that_never_ends_is_closed_with_408(quick: int) -> None:
    answer = await _exchange(quick, [(b"GET /api/v1/echo HTTP/1.1\r\nHost: x\r\n", 0)])
    assert _status(answer) == 408, answer


async def test_a_silent_connection_is_closed(quick: int) -> None:
    answer = await _exchange(quick, [])
    assert _status(answer) == 408


async def test_a_stalled_body_is_closed_with_408(quick: int) -> None:
    head = (b"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50\r\n\r\n{")
    answer = await _exchange(quick, [(head, 0)])
    assert _status(answer) == 408, answer
    assert b"body not received in time" in answer


async def test_a_trickling_body_meets_the_total_deadline(quick: int) -> None:
    head = b"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
    drip = [(head, 0.2)] + [(b"a", 0.2) for _ in range(15)]  # each gap within the idle timer
    try:
        answer = await _exchange(quick, drip, wait=4)
    except (ConnectionResetError, BrokenPipeError):
        answer = b"HTTP/1.1 408 closed"
    assert _status(answer) == 408, answer


async def test_a_slow_but_steady_body_within_limits_is_served(quick: int) -> None:
    body = b'{"q": "slow"}'
    head = (b"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    answer = await _exchange(quick, [(head, 0.3), (body[:5], 0.3), (body[5:], 0)])
    assert _status(answer) == 200, answer


async def test_keep_alive_requests_are_unaffected(quick: int) -> None:
    async with aiohttp.ClientSession() as http:
        for i in range(2):
            if i:  # idle longer than the head timer: the time between requests is keep-alive's job
                await asyncio.sleep(0.6)
            async with http.post(f"http://127.0.0.1:{quick}/api/v1/echo", json={"q": "x"}) as r:
                assert r.status == 200


def test_openai_endpoint_refuses_deep_json_and_stalled_bodies_hold_no_slot(tmp_path: Path) -> None:
    agent = copy_agent("api", tmp_path, lambda w: w["settings"]["apiServer"].update(maxConcurrentRequests=2))
    with running(agent, "--openai") as srv:
        body = b'{"model": "server-fixture", "messages": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
        head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        answer = _raw(srv.port, head + body)
        assert _status(answer) == 400, answer[:300]
        assert b"nested too deeply" in answer
        stalled = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(5)]
        try:
            for sock in stalled:
                sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 90\r\n\r\n{")
            answer = _raw(srv.port, b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert _status(answer) == 200, answer[:300]
            echo = _raw(srv.port, b"POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            assert _status(echo) == 200, echo[:300]
        finally:
            for sock in stalled:
                sock.close()
        assert "Traceback" not in srv.stderr
