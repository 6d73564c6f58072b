"""Predicate builtins (`filter`, `map`, `all`, ...): they receive the frame, the collection and a
compiled predicate closure, and charge the evaluation's budget as they iterate."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from kdeps.errors import ExprError
from kdeps.expr.builtins.args import as_list, hashable
from kdeps.expr.builtins.arrays import sort_by_keys, sort_order
from kdeps.expr.runtime import CHECK_EVERY, Frame
from kdeps.expr.values import check_int, is_number, to_text, type_name

Predicate = Callable[[Frame], Any]


def _iterate(fn: str, frame: Frame, items: Any, pred: Predicate) -> Iterator[tuple[int, Any, Any]]:
    """Yield (index, item, predicate result) with `#`/`#index` bound; restores the frame after."""
    seq = as_list(fn, items)
    saved = frame.ptr, frame.idx
    frame.start_loop()
    try:
        for index, item in enumerate(seq):
            if not index % CHECK_EVERY:
                frame.charge(CHECK_EVERY)
            frame.ptr, frame.idx = item, index
            yield index, item, pred(frame)
    finally:
        frame.ptr, frame.idx = saved


def _truth(fn: str, value: Any) -> bool:
    if type(value) is bool:
        return value
    raise ExprError(f"{fn}() predicate must return a bool, got {type_name(value)}")


def p_filter(frame: Frame, items: Any, pred: Predicate) -> list[Any]:
    return [item for _, item, ok in _iterate("filter", frame, items, pred) if _truth("filter", ok)]


def p_map(frame: Frame, items: Any, pred: Predicate) -> list[Any]:
    return [value for _, _, value in _iterate("map", frame, items, pred)]


def p_all(frame: Frame, items: Any, pred: Predicate) -> bool:
    return all(_truth("all", ok) for _, _, ok in _iterate("all", frame, items, pred))


def p_any(frame: Frame, items: Any, pred: Predicate) -> bool:
    return any(_truth("any", ok) for _, _, ok in _iterate("any", frame, items, pred))


def p_none(frame: Frame, items: Any, pred: Predicate) -> bool:
    return not any(_truth("none", ok) for _, _, ok in _iterate("none", frame, items, pred))


def p_one(frame: Frame, items: Any, pred: Predicate) -> bool:
    return sum(1 for _, _, ok in _iterate("one", frame, items, pred) if _truth("one", ok)) == 1


def p_count(frame: Frame, items: Any, pred: Predicate | None = None) -> int:
    if pred is None:
        seq = as_list("count", items)
        frame.charge(len(seq))
        return sum(1 for v in seq if v is True)
    return sum(1 for _, _, ok in _iterate("count", frame, items, pred) if _truth("count", ok))


def p_sum(frame: Frame, items: Any, pred: Predicate | None = None) -> int | float:
    if pred is None:
        values = list(as_list("sum", items))
    else:
        values = [v for _, _, v in _iterate("sum", frame, items, pred)]
    total: int | float = 0
    for index, value in enumerate(values):
        if not index % CHECK_EVERY:
            frame.check_time()
        if not is_number(value):
            raise ExprError(f"invalid argument for sum (type {type_name(value)})")
        total += value
    return check_int(total) if type(total) is int else total


def p_find(frame: Frame, items: Any, pred: Predicate) -> Any:
    for _, item, ok in _iterate("find", frame, items, pred):
        if _truth("find", ok):
            return item
    return None


def p_find_index(frame: Frame, items: Any, pred: Predicate) -> int:
    for index, _, ok in _iterate("findIndex", frame, items, pred):
        if _truth("findIndex", ok):
            return index
    return -1


def p_find_last(frame: Frame, items: Any, pred: Predicate) -> Any:
    seq = as_list("findLast", items)
    for index, item, ok in _iterate("findLast", frame, list(reversed(seq)), pred):
        del index
        if _truth("findLast", ok):
            return item
    return None


def p_find_last_index(frame: Frame, items: Any, pred: Predicate) -> int:
    seq = as_list("findLastIndex", items)
    for index, _, ok in _iterate("findLastIndex", frame, list(reversed(seq)), pred):
        if _truth("findLastIndex", ok):
            return len(seq) - 1 - index
    return -1


def p_group_by(frame: Frame, items: Any, pred: Predicate) -> dict[Any, list[Any]]:
    groups: dict[Any, list[Any]] = {}
    for _, item, key in _iterate("groupBy", frame, items, pred):
        if not hashable(key):
            key = to_text(key)
        groups.setdefault(key, []).append(item)
    return groups


def p_sort_by(frame: Frame, items: Any, pred: Predicate, order: Any = None) -> list[Any]:
    values = list(as_list("sortBy", items))
    keys = [key for _, _, key in _iterate("sortBy", frame, values, pred)]
    return sort_by_keys("sortBy", values, keys, sort_order("sortBy", order))


_NO_INIT = object()


def p_reduce(frame: Frame, items: Any, pred: Predicate, initial: Any = _NO_INIT) -> Any:
    seq = as_list("reduce", items)
    start = 0
    if initial is _NO_INIT:
        if not seq:
            raise ExprError("reduce() of an empty array needs an initial value")
        initial, start = seq[0], 1
    saved = frame.ptr, frame.idx, frame.acc
    frame.acc = initial
    frame.start_loop()
    try:
        for index in range(start, len(seq)):
            if not index % CHECK_EVERY:
                frame.charge(CHECK_EVERY)
            frame.ptr, frame.idx = seq[index], index
            frame.acc = pred(frame)
        return frame.acc
    finally:
        frame.ptr, frame.idx, frame.acc = saved
