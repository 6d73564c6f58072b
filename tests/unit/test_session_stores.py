"""Session stores: round trip, isolation, expiry from the last write, cleanup, persistence."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from kdeps.errors import KdepsError
from kdeps.session import MemoryStore, SQLiteStore, create_store


@pytest.fixture(params=["memory", "sqlite"])
async def store(request, tmp_path):
    s = create_store(request.param, path=str(tmp_path / "s.db"), base_dir=tmp_path)
    await s.open()
    yield s
    await s.close()


async def test_round_trip_and_isolation(store):
    assert await store.load("nope") is None
    data = {"visits": 1, "cart": [{"id": 1}], "name": "Zoë"}
    await store.save("abc", data, 60)
    data["visits"] = 99  # mutating the caller's dict must not change what was stored
    loaded = await store.load("abc")
    assert loaded == {"visits": 1, "cart": [{"id": 1}], "name": "Zoë"}
    loaded["visits"] = 5
    assert (await store.load("abc"))["visits"] == 1


async def test_expiry_counts_from_last_write(store):
    await store.save("s1", {"a": 1}, 0.3)
    await asyncio.sleep(0.2)
    await store.save("s1", {"a": 2}, 0.3)  # rewrite pushes expiry out
    await asyncio.sleep(0.2)
    assert await store.load("s1") == {"a": 2}
    await asyncio.sleep(0.25)
    assert await store.load("s1") is None


async def test_cleanup_removes_only_expired(store):
    await store.save("old", {"x": 1}, 0.05)
    await store.save("live", {"x": 2}, 60)
    await asyncio.sleep(0.1)
    assert await store.cleanup() == 1
    assert await store.load("live") == {"x": 2}
    assert await store.cleanup() == 0


async def test_non_json_values_are_stored_as_text(store):
    await store.save("t", {"when": Path("/tmp/x")}, 60)
    assert await store.load("t") == {"when": "/tmp/x"}


async def test_sqlite_survives_reopen_and_uses_wal(tmp_path):
    path = tmp_path / "nested" / "sessions.db"
    first = SQLiteStore(path)
    await first.save("keep", {"user": "ann"}, 60)
    await first.close()
    second = SQLiteStore(path)
    assert await second.load("keep") == {"user": "ann"}
    await second.close()
    import sqlite3

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_create_store_resolves_relative_sqlite_path_under_the_workflow_folder(tmp_path):
    s = create_store("sqlite", base_dir=tmp_path)
    assert isinstance(s, SQLiteStore) and s.path == tmp_path / ".kdeps" / "sessions.db"
    assert isinstance(create_store("memory"), MemoryStore)
    with pytest.raises(KdepsError, match=r"unknown session\.type"):
        create_store("postgres")
    with pytest.raises(KdepsError, match=r"session\.url"):
        create_store("redis")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not on PATH (CI installs it from the OS packages)")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(workdir)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


async def test_redis_store_round_trip_and_expiry(redis_url):
    s = create_store("redis", url=redis_url)
    await s.open()
    try:
        await s.save("r1", {"n": 1}, 0.3)
        assert await s.load("r1") == {"n": 1}
        await asyncio.sleep(0.45)
        assert await s.load("r1") is None
        await s.save("r2", {"n": 2}, 60)
        assert await s.load("r2") == {"n": 2}
        assert await s.cleanup() == 0
    finally:
        await s.close()


async def test_redis_unreachable_fails_at_open_without_password():
    port = _free_port()
    s = create_store("redis", url=f"redis://user:s3cret@127.0.0.1:{port}/0")
    with pytest.raises(KdepsError) as info:
        await s.open()
    assert "s3cret" not in str(info.value) and f"127.0.0.1:{port}" in str(info.value)
    await s.close()
