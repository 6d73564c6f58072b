"""Argument checks shared by the builtins: each names the function in its error."""

from __future__ import annotations

import math
from typing import Any, TypeVar

from kdeps.errors import ExprError
from kdeps.expr.runtime import active_frame
from kdeps.expr.values import MAX_ITEMS, is_number, type_name


def as_str(fn: str, value: Any) -> str:
    if type(value) is str or isinstance(value, str):
        return value
    raise ExprError(f"{fn}() expects a string, got {type_name(value)}")


def as_list(fn: str, value: Any) -> list[Any] | tuple[Any, ...]:
    if isinstance(value, list | tuple):
        return value
    raise ExprError(f"{fn}() expects an array, got {type_name(value)}")


def as_dict(fn: str, value: Any) -> dict[Any, Any]:
    if isinstance(value, dict):
        return value
    raise ExprError(f"{fn}() expects a map, got {type_name(value)}")


def as_int(fn: str, value: Any) -> int:
    if type(value) is int or (is_number(value) and math.isfinite(value)):
        return int(value)
    raise ExprError(f"{fn}() expects an integer, got {type_name(value)}")


def as_num(fn: str, value: Any) -> int | float:
    if is_number(value):
        return value
    raise ExprError(f"{fn}() expects a number, got {type_name(value)}")


_Sized = TypeVar("_Sized", str, list[Any])


def sized(result: _Sized) -> _Sized:
    if len(result) > MAX_ITEMS:
        raise ExprError(f"result too large (limit {MAX_ITEMS} items or characters)")
    active_frame().charge(len(result))
    return result


def hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
