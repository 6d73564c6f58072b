"""In-process session store: fast, lost on restart, not shared between workers."""

from __future__ import annotations

import time
from typing import Any

from kdeps.session.base import MAX_SESSION_BYTES, Clock, dumps, loads

MAX_TOTAL_CHARS = 64 * 1024 * 1024  # all sessions together, serialised


class MemoryStore:
    """Sessions kept in a dict of id -> (expires_at, serialised data), in the order they were last saved.

    One session holds at most `max_session` characters of JSON (more is SessionTooLarge); when all of them
    together would pass `max_total`, the sessions saved longest ago are dropped first, so clients that
    create sessions without end cannot grow the process without bound. Expiry reads `clock`. No `__len__`:
    an empty store must not be falsy where a caller writes `store or default_store`."""

    def __init__(self, max_session: int = MAX_SESSION_BYTES, max_total: int = MAX_TOTAL_CHARS,
                 clock: Clock = time.monotonic) -> None:
        self._items: dict[str, tuple[float, str]] = {}
        self._clock = clock
        self.max_session, self.max_total = max_session, max_total
        self.size = 0

    async def open(self) -> None:
        pass

    async def load(self, session_id: str) -> dict[str, Any] | None:
        item = self._items.get(session_id)
        if item is None:
            return None
        expires_at, text = item
        if expires_at <= self._clock():
            self._drop(session_id)
            return None
        # stored serialised so callers never share mutable state with the store
        return loads(text)

    async def save(self, session_id: str, data: dict[str, Any], ttl: float) -> None:
        text = dumps(data, self.max_session)
        self._drop(session_id)  # re-inserted at the end: the dict's order is the order of last save
        while self._items and self.size + len(text) > self.max_total:
            self._drop(next(iter(self._items)))
        self._items[session_id] = (self._clock() + ttl, text)
        self.size += len(text)

    def _drop(self, session_id: str) -> None:
        item = self._items.pop(session_id, None)
        if item is not None:
            self.size -= len(item[1])

    async def cleanup(self) -> int:
        now = self._clock()
        expired = [key for key, (expires_at, _) in self._items.items() if expires_at <= now]
        for key in expired:
            self._drop(key)
        return len(expired)

    async def close(self) -> None:
        self._items.clear()
        self.size = 0
