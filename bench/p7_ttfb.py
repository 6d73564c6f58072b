"""P7 time to first byte of a streamed chat: `kdeps run` answering with Server-Sent Events vs the
fake provider's own stream read directly (the fake sends its first token at once, the rest 50 ms apart)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    FAKE_KEY,
    MODEL,
    Result,
    Row,
    chat_agent,
    client_session,
    median,
    run_async,
    services,
    start_fake,
    start_kdeps,
)

TITLE = "P7 streamed chat: time to first byte"
PIECE_DELAY = 0.05


async def _ttfb(session: Any, url: str, body: dict[str, Any],
                headers: dict[str, str]) -> tuple[float, float, str]:
    """(seconds to the first body bytes, seconds to the end, content type)."""
    began = time.perf_counter()
    async with session.post(url, json=body, headers=headers) as r:
        first = None
        async for _chunk in r.content.iter_any():
            if first is None:
                first = time.perf_counter() - began
        return first or float("nan"), time.perf_counter() - began, r.headers.get("content-type", "")


async def _trials(fake: str, ours: str, runs: int) -> tuple[list[float], list[float], list[float], str]:
    direct_body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    direct_headers = {"Authorization": f"Bearer {FAKE_KEY}"}
    direct, mine, totals = [], [], []
    kind = ""
    async with client_session(1) as session:
        _, _, kind = await _ttfb(session, ours + "/api/v1/run", {"q": "hi"}, {"Accept": "text/event-stream"})
        if "text/event-stream" not in kind:
            return [], [], [], kind
        for _ in range(runs):
            first, _, _ = await _ttfb(session, fake + "/v1/chat/completions", direct_body, direct_headers)
            direct.append(first)
            first, total, _ = await _ttfb(session, ours + "/api/v1/run", {"q": "hi"},
                                          {"Accept": "text/event-stream"})
            mine.append(first)
            totals.append(total)
    return direct, mine, totals, kind


def run(quick: bool = False) -> Result:
    result = Result("p7", TITLE)
    runs = 5 if quick else 15
    with services() as started, tempfile.TemporaryDirectory(prefix="kdeps-bench-p7-") as tmp:
        fake = start_fake(piece_delay=PIECE_DELAY)
        started.append(fake)
        ours = start_kdeps(chat_agent(Path(tmp) / "agent", fake.url, stream=True))
        started.append(ours)
        direct, mine, totals, kind = run_async(_trials(fake.url, ours.url, runs))
    if not mine:
        result.notes.append(f"P7 not measured: the server does not stream Server-Sent Events yet "
                            f"(Accept: text/event-stream answered {kind or 'nothing'})")
        return result
    first, base = median(mine), median(direct)
    result.data = {"kdeps_ttfb_ms": first * 1e3, "direct_ttfb_ms": base * 1e3,
                   "kdeps_total_ms": median(totals) * 1e3}
    result.rows.append(Row("P7", "TTFB of a streamed chat", first * 1e3, base * 1e3, "fake stream direct",
                           "ms", first / base, note=f"whole stream {median(totals) * 1e3:.0f} ms"))
    return result
