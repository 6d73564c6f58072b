"""The session store interface shared by the memory, sqlite and redis stores."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from kdeps.errors import KdepsError

MAX_SESSION_BYTES = 1024 * 1024  # one session, serialised

Clock = Callable[[], float]  # seconds; the stores that expire sessions themselves take one (tests move it)


class SessionTooLarge(KdepsError):
    """The workflow tried to store more session data than one session may hold."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"session data is too large ({size} bytes, limit {limit})")


@runtime_checkable
class SessionStore(Protocol):
    """Async key/value store of session dicts. Expiry counts from the last `save`."""

    async def open(self) -> None:
        """Prepare the backend (create the file, check the server) so mistakes fail at startup."""
        ...

    async def load(self, session_id: str) -> dict[str, Any] | None:
        """The session's data, or None when it does not exist or has expired."""
        ...

    async def save(self, session_id: str, data: dict[str, Any], ttl: float) -> None:
        """Store `data` under `session_id`, expiring `ttl` seconds from now."""
        ...

    async def cleanup(self) -> int:
        """Drop expired sessions; returns how many were removed (0 when the backend expires by itself)."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...


def dumps(data: dict[str, Any], limit: int = MAX_SESSION_BYTES) -> str:
    """Serialise session data; values JSON cannot hold are stored as their string form. More than
    `limit` bytes (counted as characters; UTF-8 can only be longer) is SessionTooLarge."""
    text = json.dumps(data, default=str, separators=(",", ":"), ensure_ascii=False)
    if len(text) > limit:
        raise SessionTooLarge(len(text), limit)
    return text


def loads(text: str | bytes) -> dict[str, Any] | None:
    value = json.loads(text)
    return value if isinstance(value, dict) else None
