"""Calls in compiled expressions: host functions and builtins (with their arity), predicate builtins,
host namespaces (`llm.response('id')`) and the methods of dates and durations.

The compiler compiles the arguments; the closures built here only call. Nothing is reached but the
builtins table, the Env's functions and the date/duration method tables below.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kdeps.errors import ExprError, KdepsError
from kdeps.expr import values as V
from kdeps.expr.builtins import ARITY, BUILTINS, PREDICATE_BUILTINS
from kdeps.expr.gotime import format_time
from kdeps.expr.runtime import ChainNil, Fn, Frame, at_pos


def _suggest(name: str, f: Frame | None) -> str:
    names = set(BUILTINS) | set(PREDICATE_BUILTINS)
    if f is not None:
        names |= set(f.funcs)
    close = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _call_error(name: str, fn: Any, exc: BaseException, pos: int) -> BaseException:
    if isinstance(exc, ExprError):
        return at_pos(exc, pos)
    if isinstance(exc, KdepsError):
        return exc
    if not callable(fn):
        return ExprError(f"'{name}' is a namespace, not a function; call one of its members like {name}.x()",
                         pos=pos)
    if isinstance(exc, RecursionError):
        return exc
    return ExprError(f"{name}() failed: {exc}", pos=pos)


def function_call(name: str, args: list[Fn], pos: int) -> Fn:
    """`name(args...)`: a host function of the run's Env, else the builtin (looked up when compiled)."""
    count = len(args)
    fallback = _builtin_for(name, count)

    def missing(f: Frame) -> Any:
        if fallback is None:
            raise ExprError(f"unknown function '{name}'{_suggest(name, f)}", pos=pos)
        return fallback

    if count == 0:

        def call0(f: Frame) -> Any:
            fn: Any = f.funcs.get(name)
            if fn is None:
                fn = missing(f)
            try:
                return fn()
            except Exception as exc:
                raise _call_error(name, fn, exc, pos) from None

        return call0
    if count == 1:
        (a0,) = args

        def call1(f: Frame) -> Any:
            fn: Any = f.funcs.get(name)
            if fn is None:
                fn = missing(f)
            try:
                return fn(a0(f))
            except Exception as exc:
                raise _call_error(name, fn, exc, pos) from None

        return call1
    if count == 2:
        a0, a1 = args

        def call2(f: Frame) -> Any:
            fn: Any = f.funcs.get(name)
            if fn is None:
                fn = missing(f)
            try:
                return fn(a0(f), a1(f))
            except Exception as exc:
                raise _call_error(name, fn, exc, pos) from None

        return call2

    def calln(f: Frame) -> Any:
        fn: Any = f.funcs.get(name)
        if fn is None:
            fn = missing(f)
        try:
            return fn(*[a(f) for a in args])
        except Exception as exc:
            raise _call_error(name, fn, exc, pos) from None

    return calln


def _builtin_for(name: str, count: int) -> Callable[..., Any] | None:
    """The builtin called `name` for `count` arguments (one raising an arity error if they don't fit)."""
    builtin = BUILTINS.get(name)
    if builtin is None:
        return None
    low, high = ARITY[name]
    if low <= count and (high < 0 or count <= high):
        return builtin
    expected = f"{low}" if low == high else f"{low} to {high}" if high >= 0 else f"at least {low}"
    message = f"{name}() expects {expected} argument{'' if expected == '1' else 's'}, got {count}"

    def wrong_arity(*_: Any) -> Any:
        raise ExprError(message)

    return wrong_arity


def predicate_call(name: str, parts: list[tuple[bool, Fn]], pos: int) -> Fn:
    """A predicate builtin; `parts` are (is a predicate closure, compiled argument)."""
    impl = PREDICATE_BUILTINS[name]

    def run(f: Frame) -> Any:
        args = [fn if is_pred else fn(f) for is_pred, fn in parts]
        try:
            return impl(f, *args)
        except ExprError as exc:
            raise at_pos(exc, pos) from None

    return run


# Methods callable on dates and durations (expr-lang exposes Go's time methods); nothing else.
def _date_methods() -> dict[str, Callable[..., Any]]:
    def unix(d: datetime) -> int:
        return int(d.timestamp())

    return {
        "Year": lambda d: d.year, "Month": lambda d: d.month, "Day": lambda d: d.day,
        "Hour": lambda d: d.hour, "Minute": lambda d: d.minute, "Second": lambda d: d.second,
        "Nanosecond": lambda d: d.microsecond * 1000, "Weekday": lambda d: (d.weekday() + 1) % 7,
        "YearDay": lambda d: d.timetuple().tm_yday, "Unix": unix,
        "UnixMilli": lambda d: int(d.timestamp() * 1000),
        "Format": lambda d, layout: format_time(d, layout) if isinstance(layout, str) else _bad_layout(),
        "Add": lambda d, x: V.add(d, x), "Sub": lambda d, x: V.sub(d, x),
        "Before": lambda d, x: V.compare("<", d, x), "After": lambda d, x: V.compare(">", d, x),
        "Equal": lambda d, x: V.equal(d, x), "UTC": lambda d: d.astimezone(UTC),
        "Local": lambda d: d.astimezone(), "String": lambda d: V.to_text(d),
    }


def _bad_layout() -> Any:
    raise ExprError("Format() expects a layout string")


def _duration_methods() -> dict[str, Callable[..., Any]]:
    return {
        "Hours": lambda t: t.total_seconds() / 3600, "Minutes": lambda t: t.total_seconds() / 60,
        "Seconds": lambda t: t.total_seconds(), "Milliseconds": lambda t: int(t.total_seconds() * 1000),
        "String": lambda t: V.go_duration(t),
    }


DATE_METHODS = _date_methods()
DURATION_METHODS = _duration_methods()


def method_call(obj: Fn, name: str, args: list[Fn], namespace: str | None, optional: bool, pos: int) -> Fn:
    """`obj.name(args...)`: a function of the host namespace `namespace` when the run's Env has one,
    else a method of a date or duration."""

    def run(f: Frame) -> Any:
        if namespace is not None:
            space = f.funcs.get(namespace)
            if space is not None and isinstance(space, Mapping):
                fn = space.get(name)
                if fn is None:
                    close = difflib.get_close_matches(name, sorted(space), n=1, cutoff=0.6)
                    hint = f" (did you mean '{namespace}.{close[0]}'?)" if close else ""
                    raise ExprError(f"unknown function '{namespace}.{name}'{hint}", pos=pos)
                try:
                    return fn(*[a(f) for a in args])
                except Exception as exc:
                    raise _call_error(f"{namespace}.{name}", fn, exc, pos) from None
        target = obj(f)
        if target is None and optional:
            raise ChainNil
        table = (
            DATE_METHODS if isinstance(target, datetime)
            else DURATION_METHODS if isinstance(target, timedelta)
            else None
        )
        method = table.get(name) if table is not None else None
        if method is None:
            raise ExprError(
                f"cannot call method '{name}' on {V.type_name(target)}; expressions have no methods "
                f"(use a function such as lower(x) or trim(x))",
                pos=pos,
            )
        try:
            return method(target, *[a(f) for a in args])
        except ExprError as exc:
            raise at_pos(exc, pos) from None
        except TypeError:
            raise ExprError(f"wrong number of arguments for method '{name}'", pos=pos) from None

    return run
