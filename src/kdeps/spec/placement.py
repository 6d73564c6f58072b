"""Where an unknown key belongs: `requires` at the top of a seed-era resource is `metadata.requires`."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

MAX_DEPTH = 3


def _models_in(tp: Any) -> list[type[BaseModel]]:
    """The model classes an annotation holds directly (through Optional/Union/Annotated)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    if typing.get_origin(tp) in (list, dict):
        return []
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(tp):
        out.extend(_models_in(arg))
    return out


def _keys(model: type[BaseModel]) -> dict[str, Any]:
    """YAML key → annotation of each field of `model`."""
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


def key_home(root: type[BaseModel], parent: tuple[str | int, ...], key: str) -> str:
    """"; it belongs under metadata: write it as metadata.requires" when `key`, unknown at `parent`,
    is accepted elsewhere under `root` (the shortest such path); "" when it is accepted nowhere."""
    here = tuple(p for p in parent if isinstance(p, str))
    queue: list[tuple[tuple[str, ...], type[BaseModel]]] = [((), root)]
    found: list[tuple[str, ...]] = []
    seen: set[tuple[tuple[str, ...], type[BaseModel]]] = set()
    while queue:
        path, model = queue.pop(0)
        if (path, model) in seen or len(path) > MAX_DEPTH:
            continue
        seen.add((path, model))
        fields = _keys(model)
        if key in fields and path != here:
            found.append((*path, key))
        for name, annotation in fields.items():
            for sub in _models_in(annotation):
                queue.append(((*path, name), sub))
    if not found:
        return ""
    best = min(found, key=len)
    if len(best) == 1:
        return "; it belongs at the top level of the document"
    return f"; it belongs under {'.'.join(best[:-1])}: write it as {'.'.join(best)}"
