"""Helpers shared by CLI commands: loading an agent with clean errors, and `--input k=v` pairs."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from kdeps.errors import KdepsError, SpecErrors


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def load(path: str, *, require_target: bool = True) -> Any:
    """The project at `path`, or a clean exit listing every spec error."""
    from kdeps.spec import load_project

    try:
        return load_project(path, require_target=require_target)
    except SpecErrors as err:
        from kdeps.cli.validate import describe

        fail("\n".join(describe(e) for e in err.errors) + f"\n{len(err.errors)} error(s) found.")
    except KdepsError as err:
        fail(f"error: {err}")


def parse_inputs(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`k=v` pairs; a value that is valid JSON (number, object, list, true/false/null) is decoded."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"error: --input takes key=value, got {pair!r}")
        values[key] = _maybe_json(value)
    return values


def _maybe_json(value: str) -> Any:
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    # Only structured values and literals; a quoted JSON string keeps its quotes off as the user typed.
    return decoded if not isinstance(decoded, str) else value


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
