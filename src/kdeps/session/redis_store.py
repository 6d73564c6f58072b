"""Redis session store: shared by every worker and replica; Redis expires keys itself."""

from __future__ import annotations

import math
from typing import Any

from kdeps.errors import KdepsError
from kdeps.session.base import dumps, loads


class RedisStore:
    """Sessions as Redis strings under `prefix + id`, written with SET ... EX ttl."""

    def __init__(self, url: str, prefix: str = "kdeps:session:") -> None:
        import redis.asyncio as aioredis

        self.prefix = prefix
        self._client = aioredis.from_url(url)
        self._url_hint = url.split("@")[-1]  # never echo a password from the URL

    async def open(self) -> None:
        """Check the server answers, so a wrong URL fails at startup."""
        try:
            await self._client.ping()
        except Exception as exc:
            raise KdepsError(f"session store: cannot reach redis at {self._url_hint}: {exc}") from None

    async def load(self, session_id: str) -> dict[str, Any] | None:
        raw = await self._client.get(self.prefix + session_id)
        return loads(raw) if raw is not None else None

    async def save(self, session_id: str, data: dict[str, Any], ttl: float) -> None:
        if ttl >= 1:
            await self._client.set(self.prefix + session_id, dumps(data), ex=math.ceil(ttl))
        else:
            await self._client.set(self.prefix + session_id, dumps(data), px=max(1, math.ceil(ttl * 1000)))

    async def cleanup(self) -> int:
        return 0

    async def close(self) -> None:
        await self._client.aclose()
