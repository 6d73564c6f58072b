"""Go-style time helpers for the date builtins: duration strings and reference-time layouts.

Go writes layouts with the reference time `Mon Jan 2 15:04:05 MST 2006`
(`2006-01-02 15:04:05`); durations look like `1h30m`, `250ms`, `1.5s`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from kdeps.errors import ExprError
from kdeps.spec.units import duration_seconds

MAX_NS = 2**63 - 1


def parse_duration(text: str) -> timedelta:
    """Parse a Go duration string such as `1h30m`, `-1.5s` or `300ms`."""
    if not isinstance(text, str):
        raise ExprError(f"duration() expects a string, got {type(text).__name__}")
    body, sign = text, 1
    if body[:1] in "+-" and body:
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return timedelta(0)
    if not body:
        raise ExprError(f"invalid duration {text!r}")
    seconds = duration_seconds(body, days=False)
    if seconds is None:
        raise ExprError(f"invalid duration {text!r} (use units ns, us, ms, s, m, h such as '1h30m')")
    total = seconds * 1e9
    if total > MAX_NS:
        raise ExprError(f"invalid duration {text!r}: too large")
    return timedelta(microseconds=sign * total / 1000)


# Layout tokens, longest first so that "2006" wins over "2" and "Jan" over "1".
_TOKENS = [
    "January", "Monday", "Z07:00:00", "-07:00:00", "Z07:00", "-07:00", "Z0700", "-0700", "2006", "MST",
    "Jan", "Mon", "002", "__2", "_2", "01", "02", "03", "04", "05", "06", "15", "PM", "pm", "-07", "Z07",
    "1", "2", "3", "4", "5",
]
_FRACTION = re.compile(r"[.,](0+|9+)(?!\d)")


def _layout_tokens(layout: str) -> list[tuple[bool, str]]:
    """Split a Go layout into (is_token, text) pieces."""
    pieces: list[tuple[bool, str]] = []
    i = 0
    while i < len(layout):
        frac = _FRACTION.match(layout, i)
        if frac:
            pieces.append((True, frac.group(0)))
            i = frac.end()
            continue
        for token in _TOKENS:
            if layout.startswith(token, i):
                pieces.append((True, token))
                i += len(token)
                break
        else:
            pieces.append((False, layout[i]))
            i += 1
    return pieces


def _offset(dt: datetime, colon: bool, z: bool, seconds: bool = False, hours_only: bool = False) -> str:
    delta = dt.utcoffset() or timedelta(0)
    if z and delta == timedelta(0):
        return "Z"
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    hh, mm, ss = total // 3600, total % 3600 // 60, total % 60
    if hours_only:
        return f"{sign}{hh:02d}"
    sep = ":" if colon else ""
    text = f"{sign}{hh:02d}{sep}{mm:02d}"
    return text + f"{sep}{ss:02d}" if seconds else text


def format_time(dt: datetime, layout: str) -> str:
    """Format `dt` with a Go reference-time layout."""
    out: list[str] = []
    hour12 = dt.hour % 12 or 12
    for is_token, text in _layout_tokens(layout):
        if not is_token:
            out.append(text)
            continue
        if text[0] in ".,":
            digits = f"{dt.microsecond:06d}000"[: len(text) - 1]
            if text[1] == "9":
                digits = digits.rstrip("0")
                out.append(text[0] + digits if digits else "")
            else:
                out.append(text[0] + digits)
            continue
        out.append({
            "January": dt.strftime("%B"), "Jan": dt.strftime("%b"), "Monday": dt.strftime("%A"),
            "Mon": dt.strftime("%a"), "2006": f"{dt.year:04d}", "06": f"{dt.year % 100:02d}",
            "01": f"{dt.month:02d}", "1": str(dt.month), "02": f"{dt.day:02d}", "2": str(dt.day),
            "_2": f"{dt.day:>2}", "002": f"{dt.timetuple().tm_yday:03d}",
            "__2": f"{dt.timetuple().tm_yday:>3}",
            "15": f"{dt.hour:02d}", "03": f"{hour12:02d}", "3": str(hour12), "04": f"{dt.minute:02d}",
            "4": str(dt.minute), "05": f"{dt.second:02d}", "5": str(dt.second),
            "PM": "PM" if dt.hour >= 12 else "AM", "pm": "pm" if dt.hour >= 12 else "am",
            "MST": dt.tzname() or "UTC",
            "Z07:00": _offset(dt, True, True), "-07:00": _offset(dt, True, False),
            "Z0700": _offset(dt, False, True), "-0700": _offset(dt, False, False),
            "Z07:00:00": _offset(dt, True, True, seconds=True),
            "-07:00:00": _offset(dt, True, False, seconds=True),
            "-07": _offset(dt, False, False, hours_only=True),
            "Z07": _offset(dt, False, True, hours_only=True),
        }[text])
    return "".join(out)


_STRPTIME = {
    "January": "%B", "Jan": "%b", "Monday": "%A", "Mon": "%a", "2006": "%Y", "06": "%y",
    "01": "%m", "1": "%m",
    "02": "%d", "2": "%d", "_2": "%d", "002": "%j", "15": "%H", "03": "%I", "3": "%I", "04": "%M", "4": "%M",
    "05": "%S", "5": "%S", "PM": "%p", "pm": "%p", "MST": "%Z",
    "Z07:00": "%z", "-07:00": "%z", "Z0700": "%z", "-0700": "%z", "Z07": "%z", "-07": "%z",
}


def parse_time(text: str, layout: str, tz: str | None = None) -> datetime:
    """Parse `text` with a Go layout; without a zone in the text the result is UTC (or `tz`)."""
    fmt: list[str] = []
    for is_token, piece in _layout_tokens(layout):
        if not is_token:
            fmt.append("%%" if piece == "%" else piece)
        elif piece[0] in ".,":
            fmt.append(piece[0] + "%f")
        elif piece in _STRPTIME:
            fmt.append(_STRPTIME[piece])
        else:
            raise ExprError(f"unsupported layout element {piece!r} in {layout!r}")
    try:
        parsed = datetime.strptime(text, "".join(fmt))
    except ValueError:
        raise ExprError(f"cannot parse {text!r} as {layout!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone(tz) if tz else UTC)
    return parsed


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        raise ExprError(f"unknown time zone {name!r}") from None


_DEFAULT_LAYOUTS = [
    "2006-01-02", "15:04:05", "2006-01-02 15:04:05",
    "02 Jan 06 15:04 MST", "Monday, 02-Jan-06 15:04:05 MST", "Mon, 02 Jan 2006 15:04:05 MST",
]


def parse_date(text: str, layout: str | None = None, tz: str | None = None) -> datetime:
    """`date()` builtin: ISO 8601 / RFC 3339 or one of Go's common layouts, or an explicit layout."""
    if not isinstance(text, str):
        raise ExprError(f"date() expects a string, got {type(text).__name__}")
    if layout is not None:
        return parse_time(text, layout, tz)
    if "T" in text:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone(tz) if tz else UTC)
    for candidate in _DEFAULT_LAYOUTS:
        try:
            return parse_time(text, candidate, tz)
        except ExprError:
            continue
    raise ExprError(f"invalid date {text!r}")
