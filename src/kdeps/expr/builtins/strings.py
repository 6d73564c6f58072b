"""String builtins: len, upper, lower, trim..., split, replace, repeat, join, indexOf, hasPrefix..."""

from __future__ import annotations

from typing import Any

from kdeps.errors import ExprError
from kdeps.expr.builtins.args import as_int, as_list, as_str, sized
from kdeps.expr.runtime import Ticker, active_frame
from kdeps.expr.values import MAX_ITEMS, to_text, type_name


def b_len(value: Any) -> int:
    if isinstance(value, str | list | tuple | dict):
        return len(value)
    raise ExprError(f"invalid argument for len (type {type_name(value)})")


def b_upper(s: Any) -> str:
    return as_str("upper", s).upper()


def b_lower(s: Any) -> str:
    return as_str("lower", s).lower()


def b_trim(s: Any, chars: Any = None) -> str:
    text = as_str("trim", s)
    return text.strip() if chars is None else text.strip(as_str("trim", chars))


def b_trim_prefix(s: Any, prefix: Any = " ") -> str:
    return as_str("trimPrefix", s).removeprefix(as_str("trimPrefix", prefix))


def b_trim_suffix(s: Any, suffix: Any = " ") -> str:
    return as_str("trimSuffix", s).removesuffix(as_str("trimSuffix", suffix))


def _split(fn: str, s: Any, sep: Any, n: Any, keep: bool) -> list[str]:
    s, sep = as_str(fn, s), as_str(fn, sep)
    limit = -1 if n is None else as_int(fn, n)
    if limit == 0:
        return []
    if sep == "":
        parts = list(s)
        if limit > 0 and len(parts) > limit:
            parts = [*parts[: limit - 1], "".join(parts[limit - 1 :])]
        return sized(parts)
    parts = s.split(sep, limit - 1 if limit > 0 else -1)
    if keep:
        parts = [p + sep for p in parts[:-1]] + parts[-1:]
    return sized(parts)


def b_split(s: Any, sep: Any, n: Any = None) -> list[str]:
    return _split("split", s, sep, n, keep=False)


def b_split_after(s: Any, sep: Any, n: Any = None) -> list[str]:
    return _split("splitAfter", s, sep, n, keep=True)


def b_replace(s: Any, old: Any, new: Any, n: Any = None) -> str:
    text, before, after = as_str("replace", s), as_str("replace", old), as_str("replace", new)
    count = text.count(before) if before else len(text) + 1
    if n is not None:
        limit = as_int("replace", n)
        count = count if limit < 0 else min(count, limit)
    if len(text) + count * (len(after) - len(before)) > MAX_ITEMS:
        raise ExprError(f"replace() result too large (limit {MAX_ITEMS} characters)")
    return text.replace(before, after, -1 if n is None else as_int("replace", n))


def b_repeat(s: Any, n: Any) -> str:
    text, count = as_str("repeat", s), as_int("repeat", n)
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

    return sized(as_str("join", sep).join([text(v) for v in as_list("join", items)]))


def b_index_of(s: Any, sub: Any) -> int:
    return as_str("indexOf", s).find(as_str("indexOf", sub))


def b_last_index_of(s: Any, sub: Any) -> int:
    return as_str("lastIndexOf", s).rfind(as_str("lastIndexOf", sub))


def b_has_prefix(s: Any, prefix: Any) -> bool:
    return as_str("hasPrefix", s).startswith(as_str("hasPrefix", prefix))


def b_has_suffix(s: Any, suffix: Any) -> bool:
    return as_str("hasSuffix", s).endswith(as_str("hasSuffix", suffix))
