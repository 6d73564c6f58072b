"""Sessions: a private sessions.db, size caps on the memory store, `Secure` cookies over TLS (directly or
through a trusted proxy's X-Forwarded-Proto)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kdeps.session import MemoryStore, SessionTooLarge, create_store
from tests.e2e.server_utils import KdepsServer, copy_agent, running
from tests.security.http import call


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


async def test_sessions_db_and_its_new_folder_are_private(tmp_path: Path, loose_umask: None) -> None:
    store = create_store("sqlite", base_dir=tmp_path)  # the default .kdeps/sessions.db
    await store.open()
    await store.save("abc", {"secret": "x"}, 60)
    await store.close()
    db = tmp_path / ".kdeps" / "sessions.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    for side in db.parent.glob("sessions.db-*"):
        assert not stat.S_IMODE(side.stat().st_mode) & 0o077, side


async def test_an_existing_world_readable_db_is_tightened(tmp_path: Path, loose_umask: None) -> None:
    db = tmp_path / "s.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    store = create_store("sqlite", path=str(db))
    await store.open()
    await store.close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


async def test_one_session_has_a_size_cap() -> None:
    store = MemoryStore(max_session=1000)
    with pytest.raises(SessionTooLarge, match="too large"):
        await store.save("a", {"blob": "x" * 2000}, 60)
    assert await store.load("a") is None


async def test_memory_store_total_is_capped_oldest_first() -> None:
    store = MemoryStore(max_session=1000, max_total=5000)
    for n in range(50):
        await store.save(f"s{n}", {"blob": "x" * 900}, 60)
    assert store.size <= 5000
    assert await store.load("s0") is None  # dropped: saved longest ago
    assert await store.load("s49") is not None


async def test_default_memory_store_is_bounded() -> None:
    store = MemoryStore()
    assert store.max_session <= 16 * 1024 * 1024 and store.max_total <= 1024 * 1024 * 1024


def _proxied(workflow: dict[str, Any]) -> None:
    workflow["settings"]["apiServer"]["trustedProxies"] = ["127.0.0.1"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KdepsServer]:
    agent = copy_agent("api", tmp_path_factory.mktemp("sess"), _proxied)
    with running(agent) as srv:
        yield srv


def test_cookie_is_secure_behind_a_trusted_tls_proxy(server: KdepsServer) -> None:
    status, headers, _ = call(server.url, "POST", "/api/v1/visit", body={},
                              headers={"X-Forwarded-Proto": "https"})
    assert status == 200
    assert "kdeps_session=" in headers["set-cookie"]
    assert "Secure" in headers["set-cookie"]


def test_cookie_is_not_secure_over_plain_http(server: KdepsServer) -> None:
    status, headers, _ = call(server.url, "POST", "/api/v1/visit", body={})
    assert status == 200
    assert "Secure" not in headers["set-cookie"]


def test_forwarded_proto_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    def untrusted(workflow: dict[str, Any]) -> None:
        workflow["settings"]["apiServer"]["trustedProxies"] = ["10.9.9.9"]

    with running(copy_agent("api", tmp_path, untrusted)) as srv:
        _, headers, _ = call(srv.url, "POST", "/api/v1/visit", body={},
                             headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in headers["set-cookie"]


def test_oversized_session_is_a_clear_413(tmp_path: Path) -> None:
    agent = copy_agent("api", tmp_path)
    visit = agent / "resources" / "visit.yaml"
    visit.write_text(visit.read_text().replace(
        "    - set('visits', (get('visits', 'session') ?? 0) + 1, 'session')",
        "    - set('a', repeat('x', 600000), 'session')\n    - set('b', repeat('y', 600000), 'session')"))
    with running(agent) as srv:
        status, _, body = call(srv.url, "POST", "/api/v1/visit", body={})
        assert "Traceback" not in srv.stderr
    assert status == 413, body
    assert "session data is too large" in body["error"]["message"]
