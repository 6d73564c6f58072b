"""Session stores: `memory`, `sqlite` (default) and `redis`, all behind the async `SessionStore` interface."""

from __future__ import annotations

from pathlib import Path

from kdeps.errors import KdepsError
from kdeps.session.base import SessionStore, SessionTooLarge
from kdeps.session.memory import MemoryStore
from kdeps.session.sqlite import SQLiteStore

DEFAULT_SQLITE_PATH = ".kdeps/sessions.db"

__all__ = ["DEFAULT_SQLITE_PATH", "MemoryStore", "SQLiteStore", "SessionStore", "SessionTooLarge",
           "create_store"]


def create_store(kind: str = "sqlite", *, path: str | None = None, url: str | None = None,
                 base_dir: str | Path = ".") -> SessionStore:
    """Build the store named by `session.type`; a relative sqlite `path` is resolved under `base_dir`."""
    kind = (kind or "sqlite").lower()
    if kind == "memory" or (kind == "sqlite" and path == ":memory:"):  # sqlite's name for in-memory
        return MemoryStore()
    if kind == "sqlite":
        file = Path(path or DEFAULT_SQLITE_PATH).expanduser()
        if not file.is_absolute():
            file = Path(base_dir) / file
        return SQLiteStore(file)
    if kind == "redis":
        if not url:
            raise KdepsError("session.type is 'redis' but session.url is not set (e.g. redis://localhost:6379/0)")
        from kdeps.session.redis_store import RedisStore

        return RedisStore(url)
    raise KdepsError(f"unknown session.type '{kind}': use sqlite, memory or redis")
