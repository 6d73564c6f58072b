"""In-process session store: fast, lost on restart, not shared between workers."""

from __future__ import annotations

import time
from typing import Any

from kdeps.session.base import dumps, loads


class MemoryStore:
    """Sessions kept in a dict of id -> (expires_at, serialised data)."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, str]] = {}

    async def open(self) -> None:
        pass

    async def load(self, session_id: str) -> dict[str, Any] | None:
        item = self._items.get(session_id)
        if item is None:
            return None
        expires_at, text = item
        if expires_at <= time.monotonic():
            self._items.pop(session_id, None)
            return None
        # stored serialised so callers never share mutable state with the store
        return loads(text)

    async def save(self, session_id: str, data: dict[str, Any], ttl: float) -> None:
        self._items[session_id] = (time.monotonic() + ttl, dumps(data))

    async def cleanup(self) -> int:
        now = time.monotonic()
        expired = [key for key, (expires_at, _) in self._items.items() if expires_at <= now]
        for key in expired:
            del self._items[key]
        return len(expired)

    async def close(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
