"""The evaluation environment supplied by the engine, the per-run frame, and the budget of one run.

Evaluation is synchronous and runs on the event loop, so one evaluation must not hold the loop for
long: every loop (predicates, reduce, sort, uniq, flatten, ...) checks the clock at least every
CHECK_EVERY steps, and the whole evaluation gets MAX_SECONDS of CPU; what it builds is counted in cells
(list items and characters), at most MAX_CELLS per evaluation."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from kdeps.errors import ExprError

MAX_SECONDS = 0.05  # CPU budget of one evaluation: about the longest it may hold the event loop
MAX_CELLS = 10_000_000  # list items plus characters one evaluation may build in loops and ranges
CHECK_EVERY = 64  # loop steps between two looks at the clock (a power of two)

_EMPTY: Mapping[str, Any] = {}

# CPU time of this thread: what an evaluation costs the event loop, and unlike wall time not inflated
# when other processes share the cores (a budget that trips under load would fail good expressions)
_clock = time.thread_time


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
    """Mutable state of one run: the environment, `let` bindings, the predicate pointer, the budget."""

    __slots__ = ("acc", "cells", "deadline", "funcs", "idx", "locals", "ptr", "vars")

    def __init__(self, env: Env) -> None:
        self.funcs = env.functions
        self.vars = env.variables
        self.locals: dict[str, Any] = {}
        self.ptr: Any = None
        self.idx = 0
        self.acc: Any = None
        self.deadline = 0.0  # set by the first loop: most evaluations never loop and never read the clock
        self.cells = 0

    def start_loop(self) -> None:
        if not self.deadline:
            self.deadline = _clock() + MAX_SECONDS

    def check_time(self) -> None:
        if not self.deadline:
            self.deadline = _clock() + MAX_SECONDS
        elif _clock() > self.deadline:
            raise ExprError(f"expression took too long (limit {MAX_SECONDS * 1000:g} ms of work per "
                            "evaluation)")

    def charge(self, cells: int) -> None:
        """Count `cells` built (items, characters); over MAX_CELLS is an error. Also looks at the clock."""
        self.cells += cells
        if self.cells > MAX_CELLS:
            raise ExprError(f"expression built too much data (limit {MAX_CELLS} items and characters "
                            "per evaluation)")
        self.check_time()


Fn = Callable[[Frame], Any]
"""A compiled node: evaluates against the frame of one run."""


class ChainNil(Exception):
    """Raised by `?.` on nil; caught at the end of the member chain, which then yields nil."""


def at_pos(exc: ExprError, pos: int) -> ExprError:
    """`exc` located at `pos` in the source, unless it already names a position."""
    if exc.pos is None:
        exc.pos = pos
    return exc


ACTIVE: ContextVar[Frame | None] = ContextVar("kdeps_expr_frame", default=None)
"""The frame of the evaluation running in this thread or task (`Program.run` sets it)."""


def active_frame() -> Frame:
    """The frame of the evaluation running now (a fresh one when a builtin is called directly)."""
    frame = ACTIVE.get()
    return frame if frame is not None else Frame(Env())


class Ticker:
    """Counts steps of one builtin's inner loop and checks the evaluation's clock every CHECK_EVERY."""

    __slots__ = ("frame", "steps")

    def __init__(self) -> None:
        self.frame = active_frame()
        self.frame.check_time()
        self.steps = 0

    def tick(self) -> None:
        self.steps += 1
        if not self.steps % CHECK_EVERY:
            self.frame.check_time()
