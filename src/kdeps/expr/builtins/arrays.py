"""Array and map builtins: first, last, get, take, slice, keys, values, pairs, reverse, uniq, concat,
flatten, sort."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cmp_to_key
from typing import Any

from kdeps.errors import ExprError
from kdeps.expr.builtins.args import as_dict, as_int, as_list, hashable, sized
from kdeps.expr.runtime import Ticker
from kdeps.expr.values import equal, is_number, less, to_text, type_name


def b_first(items: Any) -> Any:
    return items[0] if isinstance(items, list | tuple | str) and items else None


def b_last(items: Any) -> Any:
    return items[-1] if isinstance(items, list | tuple | str) and items else None


def b_get(container: Any, key: Any) -> Any:
    if isinstance(container, dict):
        return container.get(key) if hashable(key) else None
    if isinstance(container, list | tuple) and type(key) is int and -len(container) <= key < len(container):
        return container[key]
    return None


def b_take(items: Any, n: Any) -> list[Any]:
    return list(as_list("take", items)[: max(0, as_int("take", n))])


def b_slice(items: Any, start: Any = None, end: Any = None) -> Any:
    seq = items if isinstance(items, str) else as_list("slice", items)
    lo = 0 if start is None else as_int("slice", start)
    hi = len(seq) if end is None else as_int("slice", end)
    result = seq[lo:hi]
    return list(result) if isinstance(result, tuple) else result


def b_keys(m: Any) -> list[Any]:
    return list(as_dict("keys", m).keys())


def b_values(m: Any) -> list[Any]:
    return list(as_dict("values", m).values())


def b_to_pairs(m: Any) -> list[list[Any]]:
    return [[k, v] for k, v in as_dict("toPairs", m).items()]


def b_from_pairs(pairs: Any) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for pair in as_list("fromPairs", pairs):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ExprError(f"fromPairs() expects [key, value] pairs, got {to_text(pair)}")
        if not hashable(pair[0]):
            raise ExprError(f"fromPairs(): invalid map key of type {type_name(pair[0])}")
        out[pair[0]] = pair[1]
    return out


def b_reverse(items: Any) -> list[Any]:
    return list(reversed(as_list("reverse", items)))


def _key(value: Any) -> Any:
    """A hashable identity consistent with `equal` for scalars (1 and 1.0 alike, true apart from 1)."""
    t = type(value)
    if t is bool:
        return ("b", value)
    if is_number(value):
        return ("n", value)
    if t is str or isinstance(value, str):
        return ("s", str(value))
    if value is None:
        return ("z", None)
    return None


def b_uniq(items: Any) -> list[Any]:
    seen: set[Any] = set()
    others: list[Any] = []
    out: list[Any] = []
    tick = Ticker().tick
    for value in as_list("uniq", items):
        tick()
        key = _key(value)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        else:
            if _seen_before(value, others, tick):
                continue
            others.append(value)
        out.append(value)
    return out


def _seen_before(value: Any, others: list[Any], tick: Any) -> bool:
    for other in others:
        tick()
        if equal(value, other):
            return True
    return False


def b_concat(*lists: Any) -> list[Any]:
    if not lists:
        raise ExprError("concat() expects at least 1 argument")
    out: list[Any] = []
    for items in lists:
        out.extend(as_list("concat", items))
        sized(out)
    return out


def b_flatten(items: Any) -> list[Any]:
    out: list[Any] = []

    tick = Ticker().tick

    def walk(seq: Any, depth: int) -> None:
        if depth > 50:
            raise ExprError("flatten(): arrays nested too deeply")
        for value in seq:
            tick()
            if isinstance(value, list | tuple):
                walk(value, depth + 1)
            else:
                out.append(value)
        sized(out)

    walk(as_list("flatten", items), 0)
    return out


def sort_order(fn: str, order: Any) -> bool:
    """True for a descending `order` argument ('desc'), False for 'asc' or none."""
    if order is None or order == "asc":
        return False
    if order == "desc":
        return True
    raise ExprError(f"{fn}() order must be 'asc' or 'desc', got {to_text(order)}")


MAX_SORT = 100_000  # items one sort may order: more cannot fit in the evaluation budget anyway


def sort_by_keys(fn: str, values: list[Any], keys: list[Any], reverse: bool) -> list[Any]:
    """`values` ordered by their `keys` (expr-lang's order; stable), for sort() and sortBy()."""
    if len(keys) > MAX_SORT:
        raise ExprError(f"{fn}() of {len(keys)} items is over the limit of {MAX_SORT}")
    tick = Ticker().tick
    numbers = strings = True
    for key in keys:
        tick()
        if type(key) is str:
            numbers = False
        elif is_number(key):
            strings = False
        elif key is None or not isinstance(key, datetime | timedelta):
            raise ExprError(f"{fn}(): cannot sort values of type {type_name(key)}")
        else:
            numbers = strings = False
    if numbers or strings:  # one kind: Python's own order is `less`, and its sort runs in C
        order = sorted(range(len(keys)), key=keys.__getitem__, reverse=reverse)
        return [values[i] for i in order]

    def cmp(a: tuple[int, Any], b: tuple[int, Any]) -> int:
        tick()
        if less(a[1], b[1]):
            return -1
        return 1 if less(b[1], a[1]) else 0

    ordered = sorted(enumerate(keys), key=cmp_to_key(cmp), reverse=reverse)
    return [values[i] for i, _ in ordered]


def b_sort(items: Any, order: Any = None) -> list[Any]:
    values = list(as_list("sort", items))
    return sort_by_keys("sort", values, values, sort_order("sort", order))
