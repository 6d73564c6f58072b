"""Names of the LLM backends a `chat` resource may use, read from their declarations
(`kdeps.llm.catalog`, which imports no backend code and no aiohttp)."""

from __future__ import annotations

from kdeps.llm.catalog import DEFAULT_BACKEND, NAMES

BACKENDS: tuple[str, ...] = NAMES

__all__ = ["BACKENDS", "DEFAULT_BACKEND"]
