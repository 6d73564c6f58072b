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


def test_tool_without_script_runs_its_namesake(tmp_path: Path) -> None:
    (tmp_path / "resources").mkdir()
    (tmp_path / "workflow.yaml").write_text(
        "apiVersion: kdeps.io/v1\nkind: Workflow\nmetadata: {name: t, targetActionId: chat}\n")
    chat = ("apiVersion: kdeps.io/v1\nkind: Resource\nmetadata: {actionId: chat}\nrun:\n  chat:\n"
            "    model: m\n    prompt: hi\n    tools:\n      - name: save_analysis\n"
            "        parameters: {description: {type: string}}\n")
    (tmp_path / "resources" / "chat.yaml").write_text(chat)
    err = _load_existing(tmp_path)
    assert "tool 'save_analysis' runs 'save_analysis'" in str(err)
    assert err.errors[0].line == 9
    (tmp_path / "resources" / "tool.yaml").write_text(
        "apiVersion: kdeps.io/v1\nkind: Resource\nmetadata: {actionId: save_analysis}\n"
        "run:\n  expr: [\"set('saved', true)\"]\n")
    assert next(load_project(tmp_path).resources["chat"].chats()).tools[0].script is None


def _load_existing(root: Path) -> SpecErrors:
    with pytest.raises(SpecErrors) as info:
        load_project(root)
    return info.value
