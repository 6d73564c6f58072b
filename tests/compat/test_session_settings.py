"""Seed-era session settings: `enabled` and the nested `storage: {type, path}`, and sqlite's
`:memory:` path, as KDeps' own scripts write them."""

from __future__ import annotations

from pathlib import Path

from kdeps.server.config import settings_from_project
from kdeps.session import MemoryStore, create_store
from kdeps.spec import load_project
from tests.compat.test_layouts import write

RESPONSE = {"response.yaml": "actionId: response\napiResponse:\n  response: 1\n"}


def _settings(tmp_path: Path, session: str):
    return settings_from_project(load_project(write(tmp_path, RESPONSE, workflow_extra=session)))


def test_nested_storage_sets_type_and_path(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "  session:\n    enabled: true\n    ttl: 30s\n"
                                   "    storage:\n      type: sqlite\n      path: ./s.db\n")
    assert (settings.session.type, settings.session.path, settings.session.ttl) == ("sqlite", "./s.db", 30.0)


def test_top_level_keys_win_over_storage(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "  session:\n    type: memory\n    storage:\n      type: sqlite\n")
    assert settings.session.type == "memory"


def test_disabled_block_is_ignored(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "  session:\n    enabled: false\n    type: memory\n    ttl: 5s\n")
    assert settings.session.type == "sqlite" and settings.session.ttl == 1800.0


def test_sqlite_memory_path_is_an_in_memory_store(tmp_path: Path) -> None:
    assert isinstance(create_store("sqlite", path=":memory:", base_dir=tmp_path), MemoryStore)
    assert not (tmp_path / ":memory:").exists()
