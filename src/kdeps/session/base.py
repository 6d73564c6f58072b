"""The session store interface shared by the memory, sqlite and redis stores."""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable


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


def dumps(data: dict[str, Any]) -> str:
    """Serialise session data; values JSON cannot hold are stored as their string form."""
    return json.dumps(data, default=str, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> dict[str, Any] | None:
    value = json.loads(text)
    return value if isinstance(value, dict) else None
