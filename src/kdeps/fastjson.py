"""JSON on the request path: orjson when it can give the same answer as the standard library, the
standard library otherwise.

`dumps` matches `json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)`
encoded as UTF-8, except that NaN and infinities become `null` (the standard library writes `NaN`,
which is not JSON) and a float with an exponent may be spelled differently (`1e-7`, not `1e-07`:
the same number). Whatever orjson refuses (non-string keys, integers beyond 64 bits, nesting
deeper than 254, lone surrogates) goes through `json`, so it serialises, or fails, as before.
`loads` reads what orjson accepts with orjson and falls back to `json.loads` for the rest (NaN
literals, UTF-16 text, a BOM) and for text with a run of 19 or more digits (orjson reads an integer
beyond 64 bits as a float), so it returns exactly what `json.loads` returns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - a dependency; the standard library still works
    orjson = None  # type: ignore[assignment]

_LONG = re.compile(rb"[0-9]{19}")
_LONG_TEXT = re.compile(r"[0-9]{19}")
# dataclasses and datetimes go to `default`, as json.dumps sends them
_OPTIONS = (orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME) if orjson else 0


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact UTF-8 JSON of `value` (non-ASCII kept as is)."""
    if orjson is not None:
        try:
            return orjson.dumps(value, default=default, option=_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: let json serialise it or say why it cannot
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """`json.loads(data)`, faster for ordinary JSON."""
    long = _LONG.search(data) if isinstance(data, bytes) else _LONG_TEXT.search(data)
    if orjson is not None and long is None:
        try:
            return orjson.loads(data)
        except ValueError:  # orjson.JSONDecodeError; json.loads decides, and words the error
            pass
    return json.loads(data)
