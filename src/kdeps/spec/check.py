"""Static checks of the templates and expressions written in a resource, run by the loader so that
`kdeps validate` catches what would otherwise fail (or silently go empty) only when a request runs:
`{{ get('q' }}`, `{{ gett('q') }}`, a half-written bare `get('answer'`, or `get('fastSumary')` when
the resource is called `fastSummary`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any

from kdeps.errors import ExprError, SpecError
from kdeps.expr import compile_template
from kdeps.expr.builtins import BUILTINS, PREDICATE_BUILTINS
from kdeps.expr.parser import Node, parse, walk
from kdeps.spec.yamlio import Document, Path_

# Blocks whose strings the engine renders; identity and descriptions are never evaluated.
_RENDERED = frozenset({"chat", "httpClient", "python", "exec", "apiResponse", "before", "after", "items",
                       "onError", "validations"})
# Names an expression may call besides the builtins: the engine's host functions and namespaces
# (engine/scope.py; a test keeps the two in step).
HOST_NAMES = frozenset({"get", "set", "info", "file", "input", "output", "session", "env", "item", "loop",
                        "request", "llm", "http", "python", "exec"})
_LEADING_CALL = re.compile(r"\s*(get|set|info|input|output|file|len|env)\s*\(")


def check_document(doc: Document, file: str, base: tuple[str, ...], action_ids: set[str],
                   errors: list[SpecError], warnings: list[SpecError]) -> None:
    """Compile every template in the rendered blocks of one resource document."""
    for path, text in _strings(doc, base):
        line, col = doc.value_mark(path)
        if "{{" in text:
            try:
                template = compile_template(text)
            except ExprError as exc:
                errors.append(SpecError(f"bad template: {_one_line(exc)}", file, line, col))
                continue
            programs = [p for p in template.parts if not isinstance(p, str)]
            for program in programs:
                _names(parse(program.source), file, line, col, action_ids, errors, warnings)
        elif _LEADING_CALL.match(text):
            try:
                root = parse(text.strip())
            except ExprError as exc:
                errors.append(SpecError(f"this looks like an expression but does not parse: {_one_line(exc)}",
                                        file, line, col))
                continue
            _names(root, file, line, col, action_ids, errors, warnings)


def _strings(doc: Document, base: tuple[str, ...]) -> Iterator[tuple[Path_, str]]:
    n = len(base)
    for path in doc.values:
        if len(path) <= n or path[:n] != base or path[n] not in _RENDERED:
            continue
        value: Any = doc.data
        for part in path:
            if isinstance(value, list) and isinstance(part, int):
                value = value[part]
            else:
                value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            yield path, value


def _names(root: Node, file: str, line: int, col: int, action_ids: set[str],
           errors: list[SpecError], warnings: list[SpecError]) -> None:
    for node in walk(root):
        if node.kind != "call":
            continue
        name = node.args[0]
        if name not in HOST_NAMES and name not in BUILTINS and name not in PREDICATE_BUILTINS:
            close = difflib.get_close_matches(name, [*HOST_NAMES, *BUILTINS], n=1, cutoff=0.6)
            suggestion = close[0] if close else None
            errors.append(SpecError(f"unknown function '{name}'", file, line, col, suggestion))
        elif name == "get" and len(node.args[1]) == 1 and node.args[1][0].kind == "const":
            key = node.args[1][0].args[0]
            if isinstance(key, str) and key not in action_ids:
                close = difflib.get_close_matches(key, action_ids, n=1, cutoff=0.8)
                if close:
                    warnings.append(SpecError(f"get('{key}') names no resource", file, line, col, close[0]))


def _one_line(exc: ExprError) -> str:
    text = exc.message
    if exc.source:
        text += f" in `{exc.source}`"
        if exc.pos is not None:
            text += f" at column {exc.pos + 1}"
    return text
