"""Server-Sent Events end to end: `kdeps run` serving a chat resource with `stream: true` pointed at
the OpenAI-compatible fake, driven over HTTP with `Accept: text/event-stream`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.e2e.streaming import SSE_ACCEPT, chat_agent_running, parse_sse
from tests.fakes.base import gated, released
from tests.fakes.openai_compat import OpenAICompatFake, chat_stream

ROUTE = "/api/v1/chat"


@pytest.fixture(scope="module")
def fake() -> Iterator[OpenAICompatFake]:
    with OpenAICompatFake("openai") as server:
        yield server


@pytest.fixture(scope="module")
def kdeps(fake, tmp_path_factory):
    with chat_agent_running(fake, tmp_path_factory.mktemp("streaming")) as server:
        yield server


@pytest.fixture
def llm(fake):
    fake.reset()
    yield fake
    fake.reset()


async def post(url: str, body: Any, headers: dict[str, str] | None = None
               ) -> tuple[aiohttp.ClientResponse, str]:
    """One POST in a fresh client session: the response (status, headers) and its whole text."""
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        return r, await r.text()


async def test_deltas_stream_as_events_then_the_plain_body(kdeps, llm):
    text = "Streaming answers arrive piece by piece."
    llm.say(text, pieces=4)
    async with aiohttp.ClientSession() as http:
        async with http.post(kdeps.url + ROUTE, json={"q": "tell me"}, headers=SSE_ACCEPT) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/event-stream")
            assert r.headers["X-Request-Id"]
            assert "kdeps_session=" in r.headers.get("Set-Cookie", "")
            events = parse_sse(await r.text())
        assert llm.last.json["stream"] is True
        llm.say(text, pieces=4)
        async with http.post(kdeps.url + ROUTE, json={"q": "tell me"}) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
            plain = await r.json()

    names = [name for name, _ in events]
    assert names == ["delta"] * (len(events) - 1) + ["result"], names
    deltas = [data for name, data in events if name == "delta"]
    assert len(deltas) >= 3
    assert all(d["resource"] == "llm" for d in deltas)
    assert "".join(d["text"] for d in deltas) == text
    assert events[-1][1] == plain
    assert plain["data"] == {"answer": text, "question": "tell me"}


async def test_deltas_are_sent_as_they_come(kdeps, llm):
    """The first delta reaches the client while the upstream still holds the rest of its stream."""
    names: list[str] = []
    with released() as release:
        llm.push(gated(chat_stream(["one ", "two ", "three"]), 2, release))  # holds after "one "
        async with aiohttp.ClientSession() as http, http.post(kdeps.url + ROUTE, json={"q": "count"},
                                                              headers=SSE_ACCEPT) as r:
            lines = aiter(r.content)
            while not names:
                line = await asyncio.wait_for(anext(lines), 10)  # a buffered answer would time out here
                if line.startswith(b"event:"):
                    names.append(line.decode().split(":", 1)[1].strip())
            assert names == ["delta"] and not release.is_set()
            release.set()
            async for line in lines:
                if line.startswith(b"event:"):
                    names.append(line.decode().split(":", 1)[1].strip())
    assert names == ["delta", "delta", "delta", "result"]


async def test_without_accept_header_the_answer_is_plain_json(kdeps, llm):
    llm.say("just json", pieces=3)
    r, text = await post(kdeps.url + ROUTE, {"q": "hi"}, {"Accept": "application/json"})
    assert r.status == 200 and r.headers["Content-Type"] == "application/json"
    body = json.loads(text)
    assert body["success"] is True and body["data"]["answer"] == "just json"


async def test_preflight_failure_keeps_its_status_and_json(kdeps, llm):
    r, text = await post(kdeps.url + ROUTE, {"q": ""}, SSE_ACCEPT)
    assert r.status == 400
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Request-Id"]
    body = json.loads(text)
    assert body["success"] is False and body["error"]["message"] == "q is required"
    assert llm.requests == []


async def test_upstream_error_before_first_byte_keeps_its_status(kdeps, llm):
    llm.fail(400, "This model's maximum context length is exceeded.")
    r, text = await post(kdeps.url + ROUTE, {"q": "long"}, SSE_ACCEPT)
    assert r.status >= 400 and r.headers["Content-Type"] == "application/json"
    body = json.loads(text)
    assert "maximum context length" in body["error"]["message"]


async def test_stream_cut_after_first_delta_ends_with_an_error_event(kdeps, llm):
    llm.say("a reply that never finishes", pieces=4, cut_after=3)
    r, text = await post(kdeps.url + ROUTE, {"q": "go"}, SSE_ACCEPT)
    assert r.status == 200  # committed with the first delta
    events = parse_sse(text)
    assert events[0][0] == "delta"
    name, body = events[-1]
    assert name == "error", events
    assert body["success"] is False and body["status"] >= 500 and body["error"]["resource"] == "llm"


async def test_session_named_in_stream_headers_is_saved(kdeps, llm):
    llm.say("first", pieces=2)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(kdeps.url + ROUTE, json={"q": "remember me"}, headers=SSE_ACCEPT) as r:
            session_id = r.headers["X-Session-Id"]
            assert parse_sse(await r.text())[-1][0] == "result"
        llm.say("second", pieces=2)
        async with http.post(kdeps.url + ROUTE, json={"q": "again"}) as r:
            assert r.status == 200
            # an unknown session id would have been replaced by a fresh one
            assert r.headers["X-Session-Id"] == session_id


async def test_client_disconnect_cancels_the_run(kdeps, llm):
    llm.push(chat_stream([f"piece {i} " for i in range(20)], delay=0.5))
    async with aiohttp.ClientSession() as http, http.post(kdeps.url + ROUTE, json={"q": "long story"},
                                                          headers=SSE_ACCEPT) as r:
        request_id = r.headers["X-Request-Id"]
        async for line in r.content:
            if line.startswith(b"event: delta"):
                break
        r.close()
    deadline = time.monotonic() + 5
    entry = None
    while entry is None and time.monotonic() < deadline:
        for line in kdeps.stderr.splitlines():
            if request_id in line and line.startswith("{"):
                entry = json.loads(line)
        time.sleep(0.05)
    assert entry is not None, kdeps.stderr[-2000:]
    # the upstream stream would take 10 s; the run ended right after the client left
    assert entry["status"] == 499 and entry["durationMs"] < 4000, entry
