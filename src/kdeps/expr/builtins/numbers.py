"""Number builtins: abs, ceil, floor, round, int, float, bool, max, min, mean, median, bit operations."""

from __future__ import annotations

import math
import re
import statistics
from datetime import datetime, timedelta
from typing import Any

from kdeps.errors import ExprError
from kdeps.expr.builtins.args import as_num
from kdeps.expr.runtime import Ticker
from kdeps.expr.values import check_int, is_number, less, to_text, type_name


def b_abs(x: Any) -> int | float:
    return abs(as_num("abs", x))


def b_ceil(x: Any) -> float:
    return float(math.ceil(as_num("ceil", x)))


def b_floor(x: Any) -> float:
    return float(math.floor(as_num("floor", x)))


def b_round(x: Any) -> float:
    x = as_num("round", x)
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
