"""`{{ }}` templates and bare expressions in YAML values.

A string that is exactly one `{{ expr }}` yields the expression's native value; mixed
text interpolates (nil -> "", lists/maps -> JSON, floats like Go's %v). Substitution is a
single pass: text produced by an expression is never scanned for `{{` again.
"""

from __future__ import annotations

import re
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
    root = _parsed(text.strip())
    if root is None or root.kind in ("seq", "let", "const", "ident"):
        return False
    known = _Known(env)
    return known.check(root) and known.intent


@lru_cache(maxsize=4096)
def _parsed(text: str) -> Node | None:
    try:
        return parse(text)
    except ExprError:
        return None


_MAYBE = re.compile(r"[(\[.=!<>&|?+*/%-]")
_OPERATOR_KINDS = frozenset({"binary", "unary", "cond", "elvis"})
_INTENT_CALLS = frozenset({"len"})


class _Known:
    """Walks an AST: are all names known, and does it show expression intent?"""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.intent = False

    def _name(self, name: str) -> bool:
        return name in self.env.functions or name in self.env.variables

    def check(self, node: Any) -> bool:
        if isinstance(node, list | tuple):
            return all(self.check(item) for item in node)
        if not isinstance(node, Node):
            return True
        kind = node.kind
        if kind == "ident":
            return self._name(node.args[0]) or node.args[0] in ("nil", "true", "false")
        if kind == "call":
            name = node.args[0]
            if name in self.env.functions or name in _INTENT_CALLS:
                self.intent = True
            elif name not in BUILTINS and name not in PREDICATE_BUILTINS:
                return False
            return self.check(node.args[1:])
        if kind in _OPERATOR_KINDS or (kind in ("member", "method", "chain") and self._rooted(node)):
            self.intent = True
        return self.check(node.args)

    def _rooted(self, node: Node) -> bool:
        root: Any = node
        while isinstance(root, Node) and root.kind in ("member", "method", "chain"):
            root = root.args[0]
        return isinstance(root, Node) and root.kind == "ident" and self._name(root.args[0])


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
