"""Session stores: round trip, isolation, expiry from the last write, cleanup, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdeps.errors import KdepsError
from kdeps.session import MemoryStore, SQLiteStore, create_store
from tests.e2e.server_utils import free_port


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite"])
async def store(request, tmp_path, clock):
    s = MemoryStore(clock=clock) if request.param == "memory" else SQLiteStore(tmp_path / "s.db", clock=clock)
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


async def test_expiry_counts_from_last_write(store, clock):
    await store.save("s1", {"a": 1}, 30)
    clock.advance(20)
    await store.save("s1", {"a": 2}, 30)  # rewrite pushes expiry out
    clock.advance(20)
    assert await store.load("s1") == {"a": 2}
    clock.advance(9.9)
    assert await store.load("s1") == {"a": 2}
    clock.advance(0.1)  # exactly the ttl after the last write: gone
    assert await store.load("s1") is None


async def test_cleanup_removes_only_expired(store, clock):
    await store.save("old", {"x": 1}, 5)
    await store.save("live", {"x": 2}, 60)
    clock.advance(10)
    assert await store.cleanup() == 1
    assert await store.load("live") == {"x": 2}
    assert await store.cleanup() == 0


async def test_non_json_values_are_stored_as_text(store):
    await store.save("t", {"when": Path("/tmp/x")}, 60)
    assert await store.load("t") == {"when": "/tmp/x"}


async def test_sqlite_expiry_is_wall_clock_time_and_survives_reopen(tmp_path, clock):
    """The expiry time stored in the file is the clock's time, so a restarted process honours it."""
    path = tmp_path / "s.db"
    first = SQLiteStore(path, clock=clock)
    await first.save("s", {"n": 1}, 60)
    await first.close()
    clock.advance(61)
    second = SQLiteStore(path, clock=clock)
    assert await second.load("s") is None
    await second.close()


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


async def test_redis_store_round_trip_and_expiry(redis_url):
    s = create_store("redis", url=redis_url)
    await s.open()
    try:
        # Redis expires keys on its own clock: check the expiry each save hands it, not the passing of time
        await s.save("r1", {"n": 1}, 0.3)
        assert await s.load("r1") == {"n": 1}
        assert 0 < await s._client.pttl(s.prefix + "r1") <= 300  # under a second: PX, milliseconds
        await s.save("r2", {"n": 2}, 60)
        assert await s.load("r2") == {"n": 2}
        assert 59_000 < await s._client.pttl(s.prefix + "r2") <= 60_000
        await s.save("r2", {"n": 3}, 1.5)  # a rewrite replaces the expiry; whole seconds round up
        assert 1_000 < await s._client.pttl(s.prefix + "r2") <= 2_000
        await s._client.delete(s.prefix + "r2")  # what Redis does when the time comes
        assert await s.load("r2") is None
        assert await s.cleanup() == 0
    finally:
        await s.close()


async def test_redis_unreachable_fails_at_open_without_password():
    port = free_port()
    s = create_store("redis", url=f"redis://user:s3cret@127.0.0.1:{port}/0")
    with pytest.raises(KdepsError) as info:
        await s.open()
    assert "s3cret" not in str(info.value) and f"127.0.0.1:{port}" in str(info.value)
    await s.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_the_server_starts_a_new_session_once_the_ttl_has_passed(tmp_path, clock, kind):
    """Through the ASGI app: the session id is kept while requests come within `ttl` of each other
    (each one pushes the expiry out), and replaced by a fresh session after `ttl` of silence."""
    from kdeps.engine import Engine
    from kdeps.server.app import create_app
    from kdeps.spec import load_project
    from tests.asgi import call
    from tests.e2e.server_utils import copy_agent

    agent = copy_agent("api", tmp_path, lambda wf: wf["settings"].__setitem__("session", {"type": kind,
                                                                                          "ttl": "30s"}))
    project = load_project(agent)
    s = MemoryStore(clock=clock) if kind == "memory" else SQLiteStore(tmp_path / "s.db", clock=clock)
    app = create_app(project, Engine(project), session_store=s, auth_token="")

    async def visit(sid: str | None = None) -> tuple[int, str, dict[str, str]]:
        status, headers, body = await call(app, "/api/v1/visit", "POST", body=b"{}",
                                           headers={"content-type": "application/json",
                                                    **({"x-session-id": sid} if sid else {})})
        assert status == 200, body
        return json.loads(body)["data"]["visits"], headers["x-session-id"], headers

    try:
        first, sid, headers = await visit()
        assert first == 1 and "Max-Age=30" in headers["set-cookie"]
        clock.advance(29)
        assert (await visit(sid))[:2] == (2, sid)
        clock.advance(29)  # 58 s after the first visit, 29 s after the last
        assert (await visit(sid))[:2] == (3, sid)
        clock.advance(30)
        visits, new_sid, _ = await visit(sid)
        assert visits == 1 and new_sid != sid
    finally:
        await s.close()
