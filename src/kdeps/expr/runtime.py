"""The evaluation environment supplied by the engine, and the per-run frame."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from kdeps.errors import ExprError

MAX_SECONDS = 2.0  # wall-clock budget of one evaluation that iterates (predicates)

_EMPTY: Mapping[str, Any] = {}


class Env:
    """Host functions (and namespaces of them) plus plain-data variables visible to expressions.

    `functions` maps a name to a callable (`get('q')`) or to a mapping of name -> callable
    (`llm.response('id')`); an object that is both callable and a mapping serves both forms
    (`item('current')` and `item.current()`). Host functions take positional arguments and
    return plain data. They win over builtins of the same name, except the predicate
    builtins (`filter`, `map`, `all`, ...) whose arguments are parsed as closures.
    `variables` are plain values visible as identifiers; unknown identifiers are nil. For
    `name.member(...)` a namespace in `functions` wins over a variable of the same name.
    """

    __slots__ = ("functions", "variables")

    def __init__(
        self,
        functions: Mapping[str, Callable[..., Any] | Mapping[str, Callable[..., Any]]] | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        self.functions = functions if functions is not None else _EMPTY
        self.variables = variables if variables is not None else _EMPTY


class Frame:
    """Mutable state of one run: the environment, `let` bindings and the predicate pointer."""

    __slots__ = ("acc", "deadline", "funcs", "idx", "locals", "ptr", "vars")

    def __init__(self, env: Env) -> None:
        self.funcs = env.functions
        self.vars = env.variables
        self.locals: dict[str, Any] = {}
        self.ptr: Any = None
        self.idx = 0
        self.acc: Any = None
        self.deadline = 0.0

    def start_loop(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + MAX_SECONDS

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise ExprError(f"expression took too long (limit {MAX_SECONDS:g}s)")
