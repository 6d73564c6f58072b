"""Keep-alive comments while a streamed run waits: the server app in-process on uvicorn (same as
`kdeps run`, with the keep-alive interval shortened from 15 s so the test stays fast)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest

from kdeps.server.runner import build_app
from tests.e2e.server_utils import serving
from tests.e2e.streaming import SSE_ACCEPT, copy_chat_agent, parse_sse
from tests.fakes.base import slow
from tests.fakes.openai_compat import DEFAULT_KEY, OpenAICompatFake, chat_stream


@pytest.fixture
async def served(tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, OpenAICompatFake]]:
    with OpenAICompatFake("openai") as fake:
        monkeypatch.setenv("FAKE_URL", fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", DEFAULT_KEY)
        app, _ = build_app(copy_chat_agent(tmp_path), openai_compat=True)
        app.state.kdeps.lifecycle.keepalive = 0.15
        async with serving(app) as port:
            yield f"http://127.0.0.1:{port}", fake


async def test_keepalive_comments_before_the_first_delta(served):
    url, fake = served
    fake.push(slow(chat_stream(["late ", "answer"], delay=0.05), 0.7))
    async with aiohttp.ClientSession() as http, http.post(url + "/api/v1/chat", json={"q": "wait"},
                                                          headers=SSE_ACCEPT) as r:
        assert r.status == 200
        text = await r.text()
    head = text.split("event: delta", 1)[0]
    assert head.count(": keep-alive") >= 2, text
    events = parse_sse(text)
    assert events[-1][0] == "result"
    assert events[-1][1]["data"] == {"answer": "late answer", "question": "wait"}


async def test_openai_sdk_ignores_keepalive_comments(served):
    url, fake = served
    fake.push(slow(chat_stream(["patient ", "reply"], delay=0.05), 0.5))
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="stream-agent", messages=[{"role": "user", "content": "wait"}], stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "patient reply"
