"""Conversion, encoding and dates: type, string, toJSON/fromJSON, base64, urlencode, KDeps' json/safe/
debug/default/ternary, and now, date, duration, format."""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from datetime import datetime, timedelta
from typing import Any

from kdeps.errors import ExprError
from kdeps.expr import gotime
from kdeps.expr.builtins.args import as_str
from kdeps.expr.values import TextWithFields, Time, to_json, to_text, type_name


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
    return base64.b64encode(as_str("toBase64", s).encode()).decode("ascii")


def b_from_base64(s: Any) -> str:
    try:
        return base64.b64decode(as_str("fromBase64", s), validate=True).decode("utf-8", errors="replace")
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


def b_now() -> datetime:
    """The local time as a date (expr-lang's time.Time): `type(now())` is "time.Time", its text and
    JSON form RFC 3339 as Go writes it."""
    return Time.now().astimezone()


def b_date(text: Any, layout: Any = None, tz: Any = None) -> datetime:
    if layout is not None:
        layout = as_str("date", layout)
    if tz is not None:
        tz = as_str("date", tz)
    parsed = gotime.parse_date(text, layout, tz)
    return Time.combine(parsed.date(), parsed.timetz())


def b_duration(text: Any) -> timedelta:
    return gotime.parse_duration(text)


def b_format(value: Any, layout: Any) -> str:
    if not isinstance(value, datetime):
        raise ExprError(f"format() expects a date, got {type_name(value)}")
    return gotime.format_time(value, as_str("format", layout))
