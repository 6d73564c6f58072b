"""Operators usable as functions too: contains, startsWith, endsWith, matches (RE2) and in."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import re2

from kdeps.errors import ExprError
from kdeps.expr.builtins.args import hashable
from kdeps.expr.values import equal, type_name


def op_contains(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if type(a) is str or isinstance(a, str):
        return b in a if isinstance(b, str) else _bad_operand("contains", a, b)
    if isinstance(a, list | tuple):
        return any(equal(x, b) for x in a)
    if isinstance(a, dict):
        return hashable(b) and b in a
    return _bad_operand("contains", a, b)


def _affix_test(op: str, test: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    """`startsWith`/`endsWith`: false when either side is nil, an error unless both are strings."""

    def run(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        if isinstance(a, str) and isinstance(b, str):
            return test(a, b)
        return _bad_operand(op, a, b)

    return run


op_starts_with = _affix_test("startsWith", str.startswith)
op_ends_with = _affix_test("endsWith", str.endswith)


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
        return hashable(needle) and needle in haystack
    raise ExprError(f"operator 'in' not defined on {type_name(haystack)} (use 'contains' for strings)")


def _bad_operand(op: str, a: Any, b: Any) -> bool:
    raise ExprError(f"invalid operation: {type_name(a)} {op} {type_name(b)}")
