"""The streaming chat agent (tests/data/streaming/chat, its model behind `FAKE_URL`) served against the
OpenAI fake, and reading the Server-Sent Events it sends."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.server_utils import KdepsServer, running
from tests.fakes.openai_compat import DEFAULT_KEY, OpenAICompatFake

AGENT = Path(__file__).resolve().parents[1] / "data" / "streaming" / "chat"
SSE_ACCEPT = {"Accept": "text/event-stream"}


def copy_chat_agent(folder: Path) -> Path:
    target = folder / "chat"
    shutil.copytree(AGENT, target)
    return target


@contextmanager
def chat_agent_running(fake: OpenAICompatFake, folder: Path, *args: str) -> Iterator[KdepsServer]:
    """`kdeps run` (with `args`) on a copy of the agent under `folder`, its model answered by `fake`."""
    env = {"FAKE_URL": fake.url, "OPENAI_API_KEY": DEFAULT_KEY}
    with running(copy_chat_agent(folder), *args, env=env) as server:
        yield server


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """(event name, parsed JSON data) for each event; comment lines are dropped."""
    events = []
    for block in re.split(r"\n\n", text.strip()):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events
