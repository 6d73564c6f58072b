"""`{{ }}` templates and bare expressions in YAML values.

A string that is exactly one `{{ expr }}` yields the expression's native value; mixed
text interpolates (nil -> "", lists/maps -> JSON, floats like Go's %v). Substitution is a
single pass: text produced by an expression is never scanned for `{{` again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kdeps.errors import ExprError
from kdeps.expr.builtins import BUILTINS, PREDICATE_BUILTINS
from kdeps.expr.compiler import Program, compile_expression
from kdeps.expr.parser import MAX_SOURCE, Node, parse
from kdeps.expr.runtime import Env
from kdeps.expr.values import render_text

_MAX_CLOSE_CANDIDATES = 8


class Template:
    """A parsed template: literal text and compiled expressions, in order."""

    __slots__ = ("parts", "single", "source")

    def __init__(self, source: str, parts: list[str | Program], single: bool) -> None:
        self.source, self.parts, self.single = source, parts, single

    def render(self, env: Env) -> Any:
        if self.single:
            program = self.parts[0]
            assert isinstance(program, Program)
            return program.run(env)
        out: list[str] = []
        for part in self.parts:
            out.append(part if isinstance(part, str) else render_text(part.run(env)))
        return "".join(out)


@lru_cache(maxsize=4096)
def compile_template(text: str) -> Template:
    """Split `text` into literal and `{{ expr }}` parts and compile each expression (cached)."""
    if len(text) > MAX_SOURCE * 4:
        raise ExprError(f"template is too long ({len(text)} characters)")
    parts: list[str | Program] = []
    i = 0
    while True:
        start = text.find("{{", i)
        if start < 0:
            if i < len(text):
                parts.append(text[i:])
            break
        if start > i:
            parts.append(text[i:start])
        program, i = _expression_at(text, start)
        parts.append(program)
    programs: list[str | Program] = [p for p in parts if isinstance(p, Program)]
    single = len(programs) == 1 and all(isinstance(p, Program) or not p.strip() for p in parts)
    if single:
        parts = programs
    return Template(text, parts, single)


def _expression_at(text: str, start: int) -> tuple[Program, int]:
    """Compile the expression opened at `start`; returns it and the index after its `}}`.

    The first `}}` whose inner text parses wins, so `{{ {a: {b: 1}} }}` and `{{ "}}" }}` work.
    """
    close = text.find("}}", start + 2)
    if close < 0:
        raise ExprError("unterminated '{{' in template (missing '}}')", text, start)
    first_error: ExprError | None = None
    for _ in range(_MAX_CLOSE_CANDIDATES):
        inner = text[start + 2 : close].strip()
        try:
            return compile_expression(inner), close + 2
        except ExprError as exc:
            if not inner:
                raise ExprError("empty expression in '{{ }}'", text, start) from None
            first_error = first_error or exc
        close = text.find("}}", close + 1)
        if close < 0:
            break
    assert first_error is not None
    raise first_error


def unbrace(source: str) -> str:
    """The expression of an always-expression field, written bare or as one whole `{{ }}`."""
    text = source.strip()
    if text.startswith("{{") and text.endswith("}}") and "{{" not in text[2:]:
        return text[2:-2].strip()
    return text


def is_bare_expression(text: str, env: Env) -> bool:
    """True when `text` (no `{{`) is an expression KDeps evaluates without braces.

    KDeps' rule, decided with our parser instead of regexes: the text must parse completely as one
    expression that shows intent — a call of a host function (`get(`, `info(`, ...) or `len(`, an
    operator (comparison, logical, arithmetic, `??`, ternary), or property/index access on a known
    object (`input.name`, `item.x`) — and every name in it must be known (host functions,
    variables, builtins). So `upper(get('q'))` and `get('n') > 3` are expressions, while
    "Hello world", "application/json" (unknown names) and "upper('x')" (no intent) stay literal.
    """
    if not isinstance(text, str) or "{{" in text or not _MAYBE.search(text):
        return False
    shape = _shape(text.strip())
    if shape is None:
        return False
    funcs, variables = env.functions, env.variables

    def known(name: str) -> bool:
        return name in funcs or name in variables

    if not all(known(n) for n in shape.idents) or not all(c in funcs for c in shape.host_calls):
        return False
    return (shape.operators or any(c in funcs or c in _INTENT_CALLS for c in shape.calls)
            or any(known(r) for r in shape.roots))


@dataclass(frozen=True, slots=True)
class _Shape:
    """What `is_bare_expression` needs of a parsed text, computed once per text: the names it must
    find in the environment, and the signs of intent."""

    idents: frozenset[str]  # free identifiers (nil/true/false aside)
    calls: frozenset[str]  # every called name
    host_calls: frozenset[str]  # called names that are no builtin: host functions or nothing
    roots: frozenset[str]  # identifiers that property/index/method access starts from
    operators: bool


_LITERAL_NAMES = frozenset({"nil", "true", "false"})
_MAYBE = re.compile(r"[(\[.=!<>&|?+*/%-]")
_OPERATOR_KINDS = frozenset({"binary", "unary", "cond", "elvis"})
_ACCESS_KINDS = frozenset({"member", "method", "chain"})
_INTENT_CALLS = frozenset({"len"})


@lru_cache(maxsize=4096)
def _shape(text: str) -> _Shape | None:
    try:
        root = parse(text)
    except ExprError:
        return None
    if root.kind in ("seq", "let", "const", "ident"):
        return None
    idents: set[str] = set()
    calls: set[str] = set()
    roots: set[str] = set()
    operators = False
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, list | tuple):
            stack.extend(node)
            continue
        if not isinstance(node, Node):
            continue
        kind = node.kind
        if kind == "ident":
            if node.args[0] not in _LITERAL_NAMES:
                idents.add(node.args[0])
            continue
        if kind == "call":
            calls.add(node.args[0])
            stack.extend(node.args[1:])
            continue
        if kind in _OPERATOR_KINDS:
            operators = True
        elif kind in _ACCESS_KINDS:
            base: Any = node
            while isinstance(base, Node) and base.kind in _ACCESS_KINDS:
                base = base.args[0]
            if isinstance(base, Node) and base.kind == "ident":
                roots.add(base.args[0])
        stack.extend(node.args)
    host_calls = calls - BUILTINS.keys() - PREDICATE_BUILTINS.keys()
    return _Shape(frozenset(idents), frozenset(calls), frozenset(host_calls), frozenset(roots), operators)


def render(value: Any, env: Env, *, bare: bool = True) -> Any:
    """Evaluate templates inside `value` (strings, and dicts/lists recursively).

    Dict keys are rendered only when they contain `{{`. With `bare=True`, a plain string
    that `is_bare_expression` accepts is evaluated too; otherwise plain strings are literals.
    Non-string scalars are returned unchanged.
    """
    if isinstance(value, str):
        if "{{" in value:
            return compile_template(value).render(env)
        if bare and is_bare_expression(value, env):
            return compile_expression(value.strip()).run(env)
        return value
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and "{{" in key:
                rendered = compile_template(key).render(env)
                key = rendered if isinstance(rendered, str) else render_text(rendered)
            out[key] = render(item, env, bare=bare)
        return out
    if isinstance(value, list):
        return [render(item, env, bare=bare) for item in value]
    return value
