"""Hostile YAML: recursive anchors and alias bombs end in located errors, quickly."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdeps.errors import SpecErrors
from kdeps.spec import load_project


def _load(tmp_path: Path, text: str) -> SpecErrors:
    (tmp_path / "workflow.yaml").write_text(text)
    with pytest.raises(SpecErrors) as info:
        load_project(tmp_path)
    return info.value


def test_recursive_anchor_is_an_error(tmp_path: Path) -> None:
    err = _load(tmp_path, "metadata: &a [*a]\n")
    assert any("recursive anchor" in e.message for e in err.errors)


def test_alias_bomb_is_cut_off(tmp_path: Path) -> None:
    rows = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    err = _load(tmp_path, "\n".join(rows) + "\n")
    bomb = [e for e in err.errors if "document too large" in e.message]
    assert bomb and bomb[0].line >= 1
