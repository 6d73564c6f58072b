"""Parsing of durations ("1m30s") and byte sizes ("10MB") written in YAML. Pure functions, no imports."""

from __future__ import annotations

import re

# Go's time.ParseDuration units, plus `d` (24h) because the session docs write "7d".
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmgt])i?b?|b)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_duration(value: object) -> float:
    """Return `value` in seconds. Accepts a non-negative number (seconds) or a Go-style duration
    string such as "60s", "1m30s", "500ms", "2.5s", "24h", "1h30m" (also "7d").
    Raises ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError(
            f"invalid duration {value!r}: expected e.g. 30s, 1m30s, 500ms or a number of seconds"
        )
    if isinstance(value, int | float):
        if value < 0 or value != value:  # NaN check without importing math
            raise ValueError(f"invalid duration {value!r}: must be zero or more seconds")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            return float(text)
        seconds = duration_seconds(text)
        if seconds is not None:
            return seconds
    raise ValueError(f"invalid duration {value!r}: expected e.g. 30s, 1m30s, 500ms or a number of seconds")


def duration_seconds(text: str, *, days: bool = True) -> float | None:
    """Seconds in an unsigned Go duration such as "1h30m", "1.5s" or "250ms" (with `days`, also "7d");
    None when `text` is not one. The expression builtins use it without days, as Go does."""
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m or (m.group(2) == "d" and not days):
            return None
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return total if text else None


def parse_byte_size(value: object) -> int:
    """Return `value` in bytes. Accepts an integer (bytes) or a string such as "512", "64KB", "10MB",
    "1GiB" (K/M/G/T are powers of 1024). Raises ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}: expected bytes or e.g. 10MB")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size {value!r}: must not be negative")
        return value
    if isinstance(value, str):
        m = _SIZE.fullmatch(value.strip())
        if m:
            return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()])
    raise ValueError(f"invalid size {value!r}: expected bytes or e.g. 512KB, 10MB, 1GB")


_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def next_fire_time(entry: str, now: object = None) -> float:
    """When a `loop.at` entry fires, as a Unix timestamp. Accepts RFC 3339 (`Z` or an offset), a
    local date-time (`2026-03-15T10:00:00`), a date (midnight, local) or a time of day (`10:00`,
    its next occurrence: today, or tomorrow when already past). Raises ValueError otherwise."""
    from datetime import datetime, timedelta

    current = now if isinstance(now, datetime) else datetime.now().astimezone()
    text = str(entry).strip()
    match = _TIME_OF_DAY.fullmatch(text)
    if match:
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"invalid time of day {entry!r}")
        fire = current.replace(hour=hour, minute=minute, second=second, microsecond=0)
        if fire <= current:
            fire += timedelta(days=1)
        return fire.timestamp()
    try:
        fire = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"invalid date/time {entry!r}: expected e.g. 2026-03-15T10:00:00Z, "
                         "2026-03-15 or 10:00") from None
    if fire.tzinfo is None:
        fire = fire.astimezone()  # a local date-time (a bare date is its midnight)
    return fire.timestamp()
