"""Pure builtin functions: expr-lang's standard library plus KDeps' helpers (json, safe, debug, default).

Plain builtins receive evaluated positional arguments. Predicate builtins (`filter`, `map`,
`all`, ...) receive the frame, the collection and a compiled predicate closure.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import math
import re
import statistics
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import cmp_to_key, lru_cache
from typing import Any, TypeVar

import re2

from kdeps.errors import ExprError
from kdeps.expr import gotime
from kdeps.expr.runtime import CHECK_EVERY, Frame, Ticker, active_frame
from kdeps.expr.values import (
    MAX_ITEMS,
    TextWithFields,
    Time,
    check_int,
    equal,
    is_number,
    less,
    to_json,
    to_text,
    type_name,
)

Predicate = Callable[[Frame], Any]


# -- argument helpers --------------------------------------------------------------------------
def _str(fn: str, value: Any) -> str:
    if type(value) is str or isinstance(value, str):
        return value
    raise ExprError(f"{fn}() expects a string, got {type_name(value)}")


def _list(fn: str, value: Any) -> list[Any] | tuple[Any, ...]:
    if isinstance(value, list | tuple):
        return value
    raise ExprError(f"{fn}() expects an array, got {type_name(value)}")


def _dict(fn: str, value: Any) -> dict[Any, Any]:
    if isinstance(value, dict):
        return value
    raise ExprError(f"{fn}() expects a map, got {type_name(value)}")


def _int(fn: str, value: Any) -> int:
    if type(value) is int or (is_number(value) and math.isfinite(value)):
        return int(value)
    raise ExprError(f"{fn}() expects an integer, got {type_name(value)}")


def _num(fn: str, value: Any) -> int | float:
    if is_number(value):
        return value
    raise ExprError(f"{fn}() expects a number, got {type_name(value)}")


_Sized = TypeVar("_Sized", str, list[Any])


def _sized(result: _Sized) -> _Sized:
    if len(result) > MAX_ITEMS:
        raise ExprError(f"result too large (limit {MAX_ITEMS} items or characters)")
    active_frame().charge(len(result))
    return result


# -- strings -----------------------------------------------------------------------------------
def b_len(value: Any) -> int:
    if isinstance(value, str | list | tuple | dict):
        return len(value)
    raise ExprError(f"invalid argument for len (type {type_name(value)})")


def b_upper(s: Any) -> str:
    return _str("upper", s).upper()


def b_lower(s: Any) -> str:
    return _str("lower", s).lower()


def b_trim(s: Any, chars: Any = None) -> str:
    text = _str("trim", s)
    return text.strip() if chars is None else text.strip(_str("trim", chars))


def b_trim_prefix(s: Any, prefix: Any = " ") -> str:
    return _str("trimPrefix", s).removeprefix(_str("trimPrefix", prefix))


def b_trim_suffix(s: Any, suffix: Any = " ") -> str:
    return _str("trimSuffix", s).removesuffix(_str("trimSuffix", suffix))


def _split(fn: str, s: Any, sep: Any, n: Any, keep: bool) -> list[str]:
    s, sep = _str(fn, s), _str(fn, sep)
    limit = -1 if n is None else _int(fn, n)
    if limit == 0:
        return []
    if sep == "":
        parts = list(s)
        if limit > 0 and len(parts) > limit:
            parts = [*parts[: limit - 1], "".join(parts[limit - 1 :])]
        return _sized(parts)
    parts = s.split(sep, limit - 1 if limit > 0 else -1)
    if keep:
        parts = [p + sep for p in parts[:-1]] + parts[-1:]
    return _sized(parts)


def b_split(s: Any, sep: Any, n: Any = None) -> list[str]:
    return _split("split", s, sep, n, keep=False)


def b_split_after(s: Any, sep: Any, n: Any = None) -> list[str]:
    return _split("splitAfter", s, sep, n, keep=True)


def b_replace(s: Any, old: Any, new: Any, n: Any = None) -> str:
    text, before, after = _str("replace", s), _str("replace", old), _str("replace", new)
    count = text.count(before) if before else len(text) + 1
    if n is not None:
        limit = _int("replace", n)
        count = count if limit < 0 else min(count, limit)
    if len(text) + count * (len(after) - len(before)) > MAX_ITEMS:
        raise ExprError(f"replace() result too large (limit {MAX_ITEMS} characters)")
    return text.replace(before, after, -1 if n is None else _int("replace", n))


def b_repeat(s: Any, n: Any) -> str:
    text, count = _str("repeat", s), _int("repeat", n)
    if count < 0:
        raise ExprError(f"repeat() expects a count >= 0, got {count}")
    if len(text) * count > MAX_ITEMS:
        raise ExprError(f"repeat() result too large (limit {MAX_ITEMS} characters)")
    active_frame().charge(len(text) * count)
    return text * count


def b_join(items: Any, sep: Any = "") -> str:
    tick = Ticker().tick

    def text(v: Any) -> str:
        tick()
        return v if type(v) is str else to_text(v)

    return _sized(_str("join", sep).join([text(v) for v in _list("join", items)]))


def b_index_of(s: Any, sub: Any) -> int:
    return _str("indexOf", s).find(_str("indexOf", sub))


def b_last_index_of(s: Any, sub: Any) -> int:
    return _str("lastIndexOf", s).rfind(_str("lastIndexOf", sub))


def b_has_prefix(s: Any, prefix: Any) -> bool:
    return _str("hasPrefix", s).startswith(_str("hasPrefix", prefix))


def b_has_suffix(s: Any, suffix: Any) -> bool:
    return _str("hasSuffix", s).endswith(_str("hasSuffix", suffix))


# Operators usable as functions: contains(a, b), startsWith(a, b), ...
def op_contains(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if type(a) is str or isinstance(a, str):
        return b in a if isinstance(b, str) else _bad_operand("contains", a, b)
    if isinstance(a, list | tuple):
        return any(equal(x, b) for x in a)
    if isinstance(a, dict):
        return _hashable(b) and b in a
    return _bad_operand("contains", a, b)


def op_starts_with(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if isinstance(a, str) and isinstance(b, str):
        return a.startswith(b)
    return _bad_operand("startsWith", a, b)


def op_ends_with(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if isinstance(a, str) and isinstance(b, str):
        return a.endswith(b)
    return _bad_operand("endsWith", a, b)


# RE2 (Go's regexp syntax, as KDeps uses) matches in time linear in the text whatever the pattern, so a
# hostile text or pattern cannot stall the event loop the way a backtracking engine can.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.never_capture = True  # only "does it match" is asked

# what RE2 leaves out, to name it when a pattern fails to compile (only run on that error path)
_RE2_LACKS = (
    (re.compile(r"\\[1-9]|\(\?P="), "backreferences (\\1, (?P=name))"),
    (re.compile(r"\(\?<?[=!]"), "lookahead and lookbehind ((?=...), (?!...), (?<=...), (?<!...))"),
    (re.compile(r"\(\?>"), "atomic groups ((?>...))"),
    (re.compile(r"[*+?}]\+"), "possessive quantifiers (a*+, a++)"),
    (re.compile(r"\(\?\("), "conditionals ((?(1)...))"),
)


@lru_cache(maxsize=512)
def compile_regex(pattern: str) -> Any:
    """`pattern` compiled by RE2 (linear-time matching); ExprError saying what is wrong otherwise."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except Exception as exc:
        for probe, feature in _RE2_LACKS:
            if probe.search(pattern):
                raise ExprError(f"invalid regular expression {pattern!r}: {feature} are not supported "
                                "(patterns use RE2 syntax, which matches in linear time)") from None
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ExprError(f"invalid regular expression {pattern!r}: {reason}") from None


def op_matches(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if isinstance(a, str) and isinstance(b, str):
        return compile_regex(b).search(a) is not None
    return _bad_operand("matches", a, b)


def op_in(needle: Any, haystack: Any) -> bool:
    if haystack is None:
        return False
    if isinstance(haystack, list | tuple):
        return any(equal(x, needle) for x in haystack)
    if isinstance(haystack, dict):
        return _hashable(needle) and needle in haystack
    raise ExprError(f"operator 'in' not defined on {type_name(haystack)} (use 'contains' for strings)")


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _bad_operand(op: str, a: Any, b: Any) -> bool:
    raise ExprError(f"invalid operation: {type_name(a)} {op} {type_name(b)}")


# -- numbers -----------------------------------------------------------------------------------
def b_abs(x: Any) -> int | float:
    return abs(_num("abs", x))


def b_ceil(x: Any) -> float:
    return float(math.ceil(_num("ceil", x)))


def b_floor(x: Any) -> float:
    return float(math.floor(_num("floor", x)))


def b_round(x: Any) -> float:
    x = _num("round", x)
    return math.copysign(math.floor(abs(x) + 0.5), x)


_INT_TEXT = re.compile(r"[+-]?\d+")
_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def b_int(x: Any) -> int:
    if type(x) is int:
        return x
    if is_number(x):
        if not math.isfinite(x):
            raise ExprError(f"invalid operation: int({to_text(x)})")
        return check_int(int(x))
    if isinstance(x, str):
        text = x.strip()
        if _INT_TEXT.fullmatch(text) and len(text) < 25:
            return check_int(int(text))
        raise ExprError(f"invalid operation: int({x!r})")
    raise ExprError(f"invalid operation: int({type_name(x)})")


def b_float(x: Any) -> float:
    if is_number(x):
        return float(x)
    if isinstance(x, str):
        text = x.strip()
        if _FLOAT_TEXT.fullmatch(text):
            value = float(text)
            if math.isfinite(value):
                return value
        raise ExprError(f"invalid operation: float({x!r})")
    raise ExprError(f"invalid operation: float({type_name(x)})")


_TRUE_TEXT = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE_TEXT = {"0", "f", "F", "FALSE", "false", "False"}


def b_bool(x: Any) -> bool:
    if x is None:
        return False
    if type(x) is bool:
        return x
    if is_number(x):
        return x != 0
    if isinstance(x, str):
        if x in _TRUE_TEXT:
            return True
        if x in _FALSE_TEXT:
            return False
        raise ExprError(f"invalid operation: bool({x!r})")
    raise ExprError(f"invalid operation: bool({type_name(x)})")


def _numbers(fn: str, args: tuple[Any, ...], depth: int = 0) -> list[Any]:
    out: list[Any] = []
    tick = Ticker().tick
    for arg in args:
        tick()
        if isinstance(arg, list | tuple):
            if depth > 50:
                raise ExprError(f"{fn}(): arrays nested too deeply")
            out.extend(_numbers(fn, tuple(arg), depth + 1))
        elif is_number(arg):
            out.append(arg)
        else:
            raise ExprError(f"invalid argument for {fn} (type {type_name(arg)})")
    return out


def _min_max(fn: str, args: tuple[Any, ...], pick_max: bool) -> Any:
    values: list[Any] = []
    for arg in args:
        if isinstance(arg, list | tuple):
            values.extend(arg)
        else:
            values.append(arg)
    best: Any = None
    tick = Ticker().tick
    for value in values:
        tick()
        if isinstance(value, list | tuple):
            value = _min_max(fn, tuple(value), pick_max)
            if value is None:
                continue
        if not (is_number(value) or isinstance(value, str | datetime | timedelta)):
            raise ExprError(f"invalid argument for {fn} (type {type_name(value)})")
        if best is None or (less(best, value) if pick_max else less(value, best)):
            best = value
    return best


def b_max(*args: Any) -> Any:
    if not args:
        raise ExprError("max() expects at least 1 argument")
    return _min_max("max", args, pick_max=True)


def b_min(*args: Any) -> Any:
    if not args:
        raise ExprError("min() expects at least 1 argument")
    return _min_max("min", args, pick_max=False)


def b_mean(*args: Any) -> float:
    values = _numbers("mean", args)
    return float(math.fsum(values) / len(values)) if values else 0.0


def b_median(*args: Any) -> float:
    values = _numbers("median", args)
    return float(statistics.median(values)) if values else 0.0


def _bit(fn: str, *values: Any) -> list[int]:
    out = []
    for v in values:
        if type(v) is not int:
            raise ExprError(f"{fn}() expects integers, got {type_name(v)}")
        out.append(v)
    return out


def b_bitand(a: Any, b: Any) -> int:
    x, y = _bit("bitand", a, b)
    return x & y


def b_bitor(a: Any, b: Any) -> int:
    x, y = _bit("bitor", a, b)
    return x | y


def b_bitxor(a: Any, b: Any) -> int:
    x, y = _bit("bitxor", a, b)
    return x ^ y


def b_bitnand(a: Any, b: Any) -> int:
    x, y = _bit("bitnand", a, b)
    return x & ~y


def b_bitnot(a: Any) -> int:
    (x,) = _bit("bitnot", a)
    return ~x


def b_bitshl(a: Any, b: Any) -> int:
    x, y = _bit("bitshl", a, b)
    if not 0 <= y < 64:
        raise ExprError(f"bitshl() shift count out of range: {y}")
    return check_int(((x << y) + 2**63) % 2**64 - 2**63)


def b_bitshr(a: Any, b: Any) -> int:
    x, y = _bit("bitshr", a, b)
    if y < 0:
        raise ExprError(f"bitshr() shift count out of range: {y}")
    return x >> min(y, 64)


# -- arrays and maps ---------------------------------------------------------------------------
def b_first(items: Any) -> Any:
    return items[0] if isinstance(items, list | tuple | str) and items else None


def b_last(items: Any) -> Any:
    return items[-1] if isinstance(items, list | tuple | str) and items else None


def b_get(container: Any, key: Any) -> Any:
    if isinstance(container, dict):
        return container.get(key) if _hashable(key) else None
    if isinstance(container, list | tuple) and type(key) is int and -len(container) <= key < len(container):
        return container[key]
    return None


def b_take(items: Any, n: Any) -> list[Any]:
    return list(_list("take", items)[: max(0, _int("take", n))])


def b_slice(items: Any, start: Any = None, end: Any = None) -> Any:
    seq = items if isinstance(items, str) else _list("slice", items)
    lo = 0 if start is None else _int("slice", start)
    hi = len(seq) if end is None else _int("slice", end)
    result = seq[lo:hi]
    return list(result) if isinstance(result, tuple) else result


def b_keys(m: Any) -> list[Any]:
    return list(_dict("keys", m).keys())


def b_values(m: Any) -> list[Any]:
    return list(_dict("values", m).values())


def b_to_pairs(m: Any) -> list[list[Any]]:
    return [[k, v] for k, v in _dict("toPairs", m).items()]


def b_from_pairs(pairs: Any) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for pair in _list("fromPairs", pairs):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ExprError(f"fromPairs() expects [key, value] pairs, got {to_text(pair)}")
        if not _hashable(pair[0]):
            raise ExprError(f"fromPairs(): invalid map key of type {type_name(pair[0])}")
        out[pair[0]] = pair[1]
    return out


def b_reverse(items: Any) -> list[Any]:
    return list(reversed(_list("reverse", items)))


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
    for value in _list("uniq", items):
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
        out.extend(_list("concat", items))
        _sized(out)
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
        _sized(out)

    walk(_list("flatten", items), 0)
    return out


def _order(fn: str, order: Any) -> bool:
    if order is None or order == "asc":
        return False
    if order == "desc":
        return True
    raise ExprError(f"{fn}() order must be 'asc' or 'desc', got {to_text(order)}")


MAX_SORT = 100_000  # items one sort may order: more cannot fit in the evaluation budget anyway


def _sorted(fn: str, values: list[Any], keys: list[Any], reverse: bool) -> list[Any]:
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
    values = list(_list("sort", items))
    return _sorted("sort", values, values, _order("sort", order))


# -- conversion and encoding -------------------------------------------------------------------
def b_type(value: Any) -> str:
    return type_name(value)


def b_string(value: Any) -> str:
    return to_text(value)


def b_to_json(value: Any) -> str:
    return to_json(value)


def b_debug(value: Any) -> str:
    return to_json(value, indent=2)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def b_from_json(text: Any) -> Any:
    """Parse JSON text; invalid JSON yields nil (as KDeps' fromJSON does)."""
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None


def b_to_base64(s: Any) -> str:
    return base64.b64encode(_str("toBase64", s).encode()).decode("ascii")


def b_from_base64(s: Any) -> str:
    try:
        return base64.b64decode(_str("fromBase64", s), validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        raise ExprError("fromBase64(): illegal base64 data") from None


def b_urlencode(value: Any) -> str:
    return urllib.parse.quote_plus(to_text(value) if not isinstance(value, str) else value)


def b_ternary(cond: Any, if_true: Any, if_false: Any) -> Any:
    """KDeps' `ternary(cond, a, b)`: `a` only when `cond` is the boolean true."""
    return if_true if cond is True else if_false


def b_safe(obj: Any, path: Any) -> Any:
    """Follow a dot-separated path through maps; nil when any step is missing."""
    if obj is None or not isinstance(path, str) or path == "":
        return None
    current = obj
    for part in path.split("."):
        if isinstance(current, TextWithFields):
            current = current.fields
        if not isinstance(current, dict):
            return None
        current = current.get(part)
        if current is None:
            return None
    return current


def b_default(value: Any, fallback: Any) -> Any:
    return fallback if value is None or (value == "" and isinstance(value, str)) else value


# -- dates -------------------------------------------------------------------------------------
def b_now() -> datetime:
    """The local time as a date (expr-lang's time.Time): `type(now())` is "time.Time", its text and
    JSON form RFC 3339 as Go writes it."""
    return Time.now().astimezone()


def b_date(text: Any, layout: Any = None, tz: Any = None) -> datetime:
    if layout is not None:
        layout = _str("date", layout)
    if tz is not None:
        tz = _str("date", tz)
    parsed = gotime.parse_date(text, layout, tz)
    return Time.combine(parsed.date(), parsed.timetz())


def b_duration(text: Any) -> timedelta:
    return gotime.parse_duration(text)


def b_format(value: Any, layout: Any) -> str:
    if not isinstance(value, datetime):
        raise ExprError(f"format() expects a date, got {type_name(value)}")
    return gotime.format_time(value, _str("format", layout))


# -- predicate builtins --------------------------------------------------------------------------
def _iterate(fn: str, frame: Frame, items: Any, pred: Predicate) -> Iterator[tuple[int, Any, Any]]:
    """Yield (index, item, predicate result) with `#`/`#index` bound; restores the frame after."""
    seq = _list(fn, items)
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
        seq = _list("count", items)
        frame.charge(len(seq))
        return sum(1 for v in seq if v is True)
    return sum(1 for _, _, ok in _iterate("count", frame, items, pred) if _truth("count", ok))


def p_sum(frame: Frame, items: Any, pred: Predicate | None = None) -> int | float:
    if pred is None:
        values = list(_list("sum", items))
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
    seq = _list("findLast", items)
    for index, item, ok in _iterate("findLast", frame, list(reversed(seq)), pred):
        del index
        if _truth("findLast", ok):
            return item
    return None


def p_find_last_index(frame: Frame, items: Any, pred: Predicate) -> int:
    seq = _list("findLastIndex", items)
    for index, _, ok in _iterate("findLastIndex", frame, list(reversed(seq)), pred):
        if _truth("findLastIndex", ok):
            return len(seq) - 1 - index
    return -1


def p_group_by(frame: Frame, items: Any, pred: Predicate) -> dict[Any, list[Any]]:
    groups: dict[Any, list[Any]] = {}
    for _, item, key in _iterate("groupBy", frame, items, pred):
        if not _hashable(key):
            key = to_text(key)
        groups.setdefault(key, []).append(item)
    return groups


def p_sort_by(frame: Frame, items: Any, pred: Predicate, order: Any = None) -> list[Any]:
    values = list(_list("sortBy", items))
    keys = [key for _, _, key in _iterate("sortBy", frame, values, pred)]
    return _sorted("sortBy", values, keys, _order("sortBy", order))


_NO_INIT = object()


def p_reduce(frame: Frame, items: Any, pred: Predicate, initial: Any = _NO_INIT) -> Any:
    seq = _list("reduce", items)
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


# Builtins that charge the running evaluation's budget through `active_frame()` (not a frame
# argument): a program that calls none of them (nor `..`) skips registering its frame.
BUDGETED = frozenset({"split", "splitAfter", "repeat", "join", "max", "min", "mean", "median", "uniq",
                      "concat", "flatten", "sort", "sortBy"})

PREDICATE_BUILTINS: dict[str, Callable[..., Any]] = {
    "filter": p_filter, "map": p_map, "all": p_all, "any": p_any, "none": p_none, "one": p_one,
    "count": p_count, "sum": p_sum, "find": p_find, "findIndex": p_find_index, "findLast": p_find_last,
    "findLastIndex": p_find_last_index, "groupBy": p_group_by, "sortBy": p_sort_by, "reduce": p_reduce,
}

BUILTINS: dict[str, Callable[..., Any]] = {
    # strings
    "len": b_len, "upper": b_upper, "lower": b_lower, "trim": b_trim, "trimPrefix": b_trim_prefix,
    "trimSuffix": b_trim_suffix, "split": b_split, "splitAfter": b_split_after, "replace": b_replace,
    "repeat": b_repeat, "join": b_join, "indexOf": b_index_of, "lastIndexOf": b_last_index_of,
    "hasPrefix": b_has_prefix, "hasSuffix": b_has_suffix,
    "contains": op_contains, "startsWith": op_starts_with, "endsWith": op_ends_with, "matches": op_matches,
    # numbers
    "abs": b_abs, "ceil": b_ceil, "floor": b_floor, "round": b_round, "int": b_int, "float": b_float,
    "bool": b_bool, "max": b_max, "min": b_min, "mean": b_mean, "median": b_median,
    "bitand": b_bitand, "bitor": b_bitor, "bitxor": b_bitxor, "bitnand": b_bitnand, "bitnot": b_bitnot,
    "bitshl": b_bitshl, "bitshr": b_bitshr,
    # arrays and maps
    "first": b_first, "last": b_last, "get": b_get, "take": b_take, "slice": b_slice, "keys": b_keys,
    "values": b_values, "toPairs": b_to_pairs, "fromPairs": b_from_pairs, "reverse": b_reverse,
    "uniq": b_uniq, "concat": b_concat, "flatten": b_flatten, "sort": b_sort,
    # conversion and encoding
    "type": b_type, "string": b_string, "toJSON": b_to_json, "fromJSON": b_from_json,
    "toBase64": b_to_base64, "fromBase64": b_from_base64, "urlencode": b_urlencode,
    # KDeps helpers
    "json": b_to_json, "safe": b_safe, "debug": b_debug, "default": b_default, "ternary": b_ternary,
    # dates
    "now": b_now, "date": b_date, "duration": b_duration, "format": b_format,
}


def arity(fn: Callable[..., Any]) -> tuple[int, int]:
    """(minimum, maximum) positional arguments of a builtin; maximum -1 means variadic."""
    low = high = 0
    for param in inspect.signature(fn).parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return low, -1
        high += 1
        if param.default is param.empty:
            low += 1
    return low, high


ARITY: dict[str, tuple[int, int]] = {name: arity(fn) for name, fn in BUILTINS.items()}
