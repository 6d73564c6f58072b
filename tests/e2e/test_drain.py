"""Graceful drain of `kdeps run` on SIGTERM: no new connections, `/ready` 503 at once, in-flight
requests and Server-Sent-Event streams run to completion, exit status 0. Plus the probes."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.asgi import call
from tests.e2e.streaming import chat_agent_running, copy_chat_agent
from tests.fakes.base import gated, released
from tests.fakes.openai_compat import OpenAICompatFake, chat_stream

ROUTE = "/api/v1/chat"
PIECES = ["one ", "two ", "three ", "four ", "five"]


@pytest.fixture
def fake() -> Iterator[OpenAICompatFake]:
    with OpenAICompatFake("openai") as server:
        yield server


@pytest.fixture
def agent(tmp_path: Path) -> Path:
    return copy_chat_agent(tmp_path)


async def test_sigterm_drains_in_flight_requests_and_streams_then_exits_0(fake, tmp_path) -> None:
    with released() as release, chat_agent_running(fake, tmp_path) as server:
        # the provider holds both answers half sent until the test has checked the drain waits for them
        fake.push(gated(chat_stream(PIECES), 2, release), gated(chat_stream(PIECES), 2, release))
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "/ready") as r:
                assert r.status == 200
            first_delta = asyncio.Event()

            async def stream() -> tuple[int, str]:
                async with http.post(server.url + ROUTE, json={"q": "count"},
                                     headers={"Accept": "text/event-stream"}) as r:
                    lines = []
                    async for line in r.content:
                        lines.append(line.decode())
                        if line.startswith(b"event: delta"):
                            first_delta.set()
                    return r.status, "".join(lines)

            async def plain() -> tuple[int, Any]:
                async with http.post(server.url + ROUTE, json={"q": "count"}) as r:
                    return r.status, await r.json()

            streaming = asyncio.create_task(stream())
            await asyncio.wait_for(first_delta.wait(), 10)
            waiting = asyncio.create_task(plain())
            while fake.pending():  # both requests have reached the provider
                await asyncio.sleep(0.02)
            server.terminate()

            refused_after = None
            started = time.monotonic()
            while time.monotonic() - started < 2:
                try:
                    async with aiohttp.ClientSession() as fresh, fresh.get(server.url + "/health") as r:
                        await r.read()
                except aiohttp.ClientConnectionError:
                    refused_after = time.monotonic() - started
                    break
                await asyncio.sleep(0.02)
            assert refused_after is not None, "still accepting new connections 2 s after SIGTERM"
            assert not streaming.done() and not waiting.done()  # the drain is really waiting for them
            release.set()

            status, text = await streaming
            assert status == 200
            events = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
            assert "".join(e["text"] for e in events[:-1]) == "".join(PIECES)
            assert events[-1]["data"]["answer"] == "".join(PIECES)  # the closing `result` event
            status, body = await waiting
            assert status == 200 and body["data"]["answer"] == "".join(PIECES)
        assert await asyncio.to_thread(server.wait, 40) == 0
        assert "Traceback" not in server.stderr


async def test_probes_answer_without_auth_and_ready_turns_503_when_draining(agent, fake) -> None:
    from kdeps.engine import Engine
    from kdeps.server.app import create_app
    from kdeps.server.runner import _Server, drain
    from kdeps.spec import load_project

    project = load_project(agent)
    app = create_app(project, Engine(project), auth_token="secret-token")

    assert (await call(app, "/health"))[0] == 200
    assert (await call(app, "/ready"))[0] == 200
    assert (await call(app, "/ready", "HEAD"))[0] == 200
    assert (await call(app, ROUTE, "POST"))[0] == 401  # the token still guards the routes
    import uvicorn

    server = _Server(uvicorn.Config(app), on_exit=lambda: drain(app))
    server.handle_exit(signal.SIGTERM, None)  # what uvicorn calls on SIGTERM
    assert server.should_exit
    status, _, body = await call(app, "/ready")
    assert status == 503 and b"shutting down" in body
    assert (await call(app, "/health"))[0] == 200  # alive, only not taking new work


async def test_a_workflow_route_on_a_probe_path_wins(tmp_path: Path) -> None:
    from kdeps.engine import Engine
    from kdeps.server.app import create_app
    from kdeps.spec import load_project
    from tests.agents import make_agent

    root = make_agent(tmp_path / "a", {"response": """\
        metadata:
          actionId: response
        run:
          apiResponse:
            success: true
            response:
              mine: true
        """})
    workflow = (root / "workflow.yaml").read_text().replace("/api/v1/run", "/health")
    (root / "workflow.yaml").write_text(workflow)
    project = load_project(root)
    app = create_app(project, Engine(project))
    status, _, body = await call(app, "/health")
    assert status == 200 and json.loads(body)["data"] == {"mine": True}
    assert (await call(app, "/ready"))[0] == 200
