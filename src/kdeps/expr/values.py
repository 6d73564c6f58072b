"""Runtime semantics of values: equality, ordering, arithmetic, type names and text forms.

Values are plain data only: None, bool, int, float, str, list (tuples are read as lists),
dict, plus datetime/timedelta produced by the date builtins. Integers behave like Go's
64-bit ints (overflow is an error instead of wrapping); `/` always divides as floats.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeGuard

from kdeps.errors import ExprError
from kdeps.expr.gotime import format_time

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
MAX_ITEMS = 1_000_000  # largest list / string an expression may build


RFC3339_NANO = "2006-01-02T15:04:05.999999999Z07:00"


def time_text(value: datetime) -> str:
    """A date as Go writes a time.Time in JSON (RFC 3339, `Z` for UTC): KDeps' text of `now()`."""
    return format_time(value, RFC3339_NANO)


class Time(datetime):
    """The dates expressions make (`now()`, `date()`): a datetime whose text is Go's, also where
    callers outside the language turn it into text with str()."""

    def __str__(self) -> str:
        return time_text(self)


class TextWithFields(str):
    """Text that also answers member access: a chat reply is its text (`get('llm')`) and, as KDeps
    documents it, a response object (`get('llm').message.content`). Everywhere else it is a string."""

    fields: dict[str, Any]

    def __new__(cls, text: str, fields: dict[str, Any]) -> TextWithFields:
        obj = super().__new__(cls, text)
        obj.fields = fields
        return obj


def type_name(value: Any) -> str:
    """expr-lang's name for the type of `value` (as `type()` returns it)."""
    if value is None:
        return "nil"
    t = type(value)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "float"
    if t is str:
        return "string"
    if t is list or t is tuple:
        return "array"
    if t is dict:
        return "map"
    if isinstance(value, datetime):
        return "time.Time"
    if isinstance(value, timedelta):
        return "time.Duration"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "map"
    return "unknown"


def is_number(value: Any) -> TypeGuard[int | float]:
    t = type(value)
    return t is int or t is float or (t is not bool and isinstance(value, int | float))


def check_int(value: int) -> int:
    if INT_MIN <= value <= INT_MAX:
        return value
    raise ExprError("integer overflow (result does not fit in 64 bits)")


def check_float(value: float) -> float:
    if math.isinf(value) or math.isnan(value):
        raise ExprError("numeric overflow (result is not a finite number)")
    return value


def mismatch(op: str, a: Any, b: Any) -> ExprError:
    return ExprError(f"invalid operation: {type_name(a)} {op} {type_name(b)}")


# -- equality and ordering -------------------------------------------------------------------
def equal(a: Any, b: Any) -> bool:
    """expr-lang equality: numbers compare across int/float, containers element-wise.

    One deliberate difference: nil equals the empty string. KDeps' documented idiom
    `get('q') != ''` means "q was given"; with nil != '' every such preflight check would
    let a missing value through.
    """
    if a is None or b is None:
        return a is b or a == "" or b == ""
    ta, tb = type(a), type(b)
    if ta is str or tb is str:
        return a == b and isinstance(a, str) and isinstance(b, str)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if is_number(a):
        return is_number(b) and a == b
    if isinstance(a, list | tuple):
        if not isinstance(b, list | tuple) or len(a) != len(b):
            return False
        return all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and len(a) == len(b)
            and all(k in b and equal(v, b[k]) for k, v in a.items())
        )
    if isinstance(a, datetime) and isinstance(b, datetime):
        try:
            return a == b
        except TypeError:
            return False
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return a == b
    if isinstance(a, str):
        return isinstance(b, str) and a == b
    return False


def _comparable(a: Any, b: Any) -> bool:
    if is_number(a):
        return is_number(b)
    if isinstance(a, str):
        return isinstance(b, str)
    if isinstance(a, datetime):
        return isinstance(b, datetime)
    if isinstance(a, timedelta):
        return isinstance(b, timedelta)
    return False


def less(a: Any, b: Any) -> bool:
    if not _comparable(a, b):
        raise mismatch("<", a, b)
    try:
        return bool(a < b)
    except TypeError:  # naive vs aware datetimes
        raise mismatch("<", a, b) from None


def compare(op: str, a: Any, b: Any) -> bool:
    if not _comparable(a, b):
        raise mismatch(op, a, b)
    try:
        if op == "<":
            return bool(a < b)
        if op == ">":
            return bool(a > b)
        if op == "<=":
            return bool(a <= b)
        return bool(a >= b)
    except TypeError:
        raise mismatch(op, a, b) from None


# -- arithmetic ------------------------------------------------------------------------------
def add(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        return check_int(a + b)
    if (ta is str or isinstance(a, str)) and (tb is str or isinstance(b, str)):
        if len(a) + len(b) > MAX_ITEMS:
            raise ExprError(f"string too long (limit {MAX_ITEMS} characters)")
        return str(a) + str(b)
    if is_number(a) and is_number(b):
        return check_float(float(a) + float(b))
    if isinstance(a, datetime) and isinstance(b, timedelta):
        return _date_math(lambda: a + b)
    if isinstance(a, timedelta) and isinstance(b, datetime):
        return _date_math(lambda: b + a)
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return _date_math(lambda: a + b)
    raise mismatch("+", a, b)


def sub(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        return check_int(a - b)
    if is_number(a) and is_number(b):
        return check_float(float(a) - float(b))
    if isinstance(a, datetime) and isinstance(b, datetime | timedelta):
        return _date_math(lambda: a - b)
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return _date_math(lambda: a - b)
    raise mismatch("-", a, b)


def mul(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        return check_int(a * b)
    if is_number(a) and is_number(b):
        return check_float(float(a) * float(b))
    if isinstance(a, timedelta) and is_number(b):
        return _date_math(lambda: a * b)
    if is_number(a) and isinstance(b, timedelta):
        return _date_math(lambda: b * a)
    raise mismatch("*", a, b)


def div(a: Any, b: Any) -> float:
    if is_number(a) and is_number(b):
        if b == 0:
            raise ExprError("division by zero")
        return check_float(float(a) / float(b))
    raise mismatch("/", a, b)


def mod(a: Any, b: Any) -> int:
    if (type(a) is int and type(b) is int) or (is_number(a) and is_number(b) and int(a) == a and int(b) == b):
        x, y = int(a), int(b)
        if y == 0:
            raise ExprError("integer divide by zero")
        r = abs(x) % abs(y)  # Go's % truncates toward zero: the sign follows the dividend
        return -r if x < 0 else r
    raise mismatch("%", a, b)


def power(a: Any, b: Any) -> float:
    if is_number(a) and is_number(b):
        try:
            return check_float(math.pow(float(a), float(b)))
        except (OverflowError, ValueError):
            raise ExprError("numeric overflow (result is not a finite number)") from None
    raise mismatch("**", a, b)


def negate(a: Any) -> Any:
    if type(a) is int:
        return check_int(-a)
    if is_number(a) or isinstance(a, timedelta):
        return -a
    raise ExprError(f"invalid operation: -{type_name(a)}")


def make_range(a: Any, b: Any) -> list[int]:
    if type(a) is not int or type(b) is not int:
        raise mismatch("..", a, b)
    if b - a + 1 > MAX_ITEMS:
        raise ExprError(f"range {a}..{b} is too large (limit {MAX_ITEMS} items)")
    return list(range(a, b + 1))


def _date_math(fn: Any) -> Any:
    try:
        return fn()
    except (OverflowError, TypeError) as exc:
        raise ExprError(f"invalid date arithmetic: {exc}") from None


def truthy(value: Any) -> bool:
    """Truthiness for the elvis operator `a ?: b`: nil, false, 0, '' and empty containers are false."""
    if value is None or value is False:
        return False
    if type(value) is bool:
        return True
    if is_number(value):
        return bool(value != 0)
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


# -- text forms ------------------------------------------------------------------------------
def go_float(x: float) -> str:
    """Format a float the way Go's `%v` does: shortest digits, exponent form below 1e-4 or from 1e6."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    sign, digits_t, exponent = Decimal(repr(x)).normalize().as_tuple()
    digits = "".join(map(str, digits_t))
    nd = len(digits)
    dp = nd + int(exponent)  # position of the decimal point within the digits
    exp = dp - 1
    neg = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if nd > 1 else "")
        return f"{neg}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{neg}0.{'0' * -dp}{digits}"
    if dp >= nd:
        return f"{neg}{digits}{'0' * (dp - nd)}"
    return f"{neg}{digits[:dp]}.{digits[dp:]}"


def go_duration(td: timedelta) -> str:
    """Format a duration like Go's time.Duration.String(): 1h30m0s, 1.5s, 250ms, 0s."""
    total_ns = (td.days * 86_400 + td.seconds) * 1_000_000_000 + td.microseconds * 1000
    if total_ns == 0:
        return "0s"
    neg = total_ns < 0
    ns = abs(total_ns)
    sign = "-" if neg else ""
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1000), ("ns", 1)):
            if ns >= size:
                return sign + _trim_fraction(ns, size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _trim_fraction(rest, 1_000_000_000)
    text = f"{seconds}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _trim_fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    width = len(str(unit)) - 1
    return f"{whole}.{str(frac).rjust(width, '0').rstrip('0')}"


def to_text(value: Any) -> str:
    """Go `%v` text of a value, as the `string()` builtin returns it."""
    if value is None:
        return "<nil>"
    t = type(value)
    if t is str:
        return str(value)
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value)
    if t is float:
        return go_float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(to_text(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(((to_text(k), to_text(v)) for k, v in value.items()), key=lambda kv: kv[0])
        return "map[" + " ".join(f"{k}:{v}" for k, v in items) + "]"
    if isinstance(value, datetime):
        return time_text(value)
    if isinstance(value, timedelta):
        return go_duration(value)
    return to_text(_plain(value))


def render_text(value: Any) -> str:
    """Text substituted into a `{{ }}` template: nil is empty, lists and maps are JSON."""
    if value is None:
        return ""
    t = type(value)
    if t is str:
        return str(value)
    if t is dict or t is list or t is tuple:
        return to_json(value)
    return to_text(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return time_text(value)
    if isinstance(value, timedelta):
        return go_duration(value)
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"cannot encode {type_name(value)} as JSON")


def to_json(value: Any, indent: int | None = None) -> str:
    """JSON text of plain data (dates as RFC 3339, durations as Go duration strings)."""
    try:
        if indent is None:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
        return json.dumps(value, ensure_ascii=False, indent=indent, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ExprError(f"cannot convert to JSON: {exc}") from None


def _plain(value: Any) -> Any:
    # Unknown objects never expose attributes: they show only their type name.
    return f"<{type(value).__name__}>"
