"""SQLite session store (the default): survives restarts; workers on one host share the file.

sqlite3 is blocking, so every call runs on one dedicated thread that owns the connection."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from kdeps.session.base import Clock, dumps, loads

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at REAL NOT NULL
)
"""


def _private_file(path: Path) -> None:
    """Make sure the database file exists readable by its owner only (sessions hold user data); a folder
    we create for it is 0700. SQLite gives its -wal and -shm files the database file's mode."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        mode = os.fstat(fd).st_mode & 0o777
        if mode & 0o077:
            os.fchmod(fd, mode & 0o700)
    finally:
        os.close(fd)


class SQLiteStore:
    """Sessions in a SQLite file (WAL mode). Expiry uses wall-clock time (`clock`, time.time by default)
    so it survives restarts."""

    def __init__(self, path: str | Path, clock: Clock = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kdeps-sessions")
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            _private_file(self.path)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute(_SCHEMA)
            conn.execute("CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires_at)")
            self._conn = conn
        return self._conn

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        """Create the file and table now, so a bad path fails at startup rather than on a request."""
        await self._call(self._connect)

    def _load(self, session_id: str) -> dict[str, Any] | None:
        row = self._connect().execute(
            "SELECT data FROM sessions WHERE id = ? AND expires_at > ?", (session_id, self._clock())
        ).fetchone()
        return loads(row[0]) if row else None

    def _save(self, session_id: str, text: str, expires_at: float) -> None:
        self._connect().execute(
            "INSERT INTO sessions (id, data, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
            (session_id, text, expires_at),
        )

    def _cleanup(self) -> int:
        now = self._clock()
        return self._connect().execute("DELETE FROM sessions WHERE expires_at <= ?", (now,)).rowcount

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def load(self, session_id: str) -> dict[str, Any] | None:
        data: dict[str, Any] | None = await self._call(self._load, session_id)
        return data

    async def save(self, session_id: str, data: dict[str, Any], ttl: float) -> None:
        await self._call(self._save, session_id, dumps(data), self._clock() + ttl)

    async def cleanup(self) -> int:
        removed: int = await self._call(self._cleanup)
        return removed

    async def close(self) -> None:
        await self._call(self._close)
        self._executor.shutdown(wait=True)
