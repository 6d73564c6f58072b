"""Pure builtin functions: expr-lang's standard library plus KDeps' helpers (json, safe, debug, default).

Plain builtins receive evaluated positional arguments. Predicate builtins (`filter`, `map`,
`all`, ...) receive the frame, the collection and a compiled predicate closure. Each group lives in
its own module; this one is the table the compiler and the checks read.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from kdeps.expr.builtins.arrays import (
    b_concat,
    b_first,
    b_flatten,
    b_from_pairs,
    b_get,
    b_keys,
    b_last,
    b_reverse,
    b_slice,
    b_sort,
    b_take,
    b_to_pairs,
    b_uniq,
    b_values,
)
from kdeps.expr.builtins.conversion import (
    b_date,
    b_debug,
    b_default,
    b_duration,
    b_format,
    b_from_base64,
    b_from_json,
    b_now,
    b_safe,
    b_string,
    b_ternary,
    b_to_base64,
    b_to_json,
    b_type,
    b_urlencode,
)
from kdeps.expr.builtins.numbers import (
    b_abs,
    b_bitand,
    b_bitnand,
    b_bitnot,
    b_bitor,
    b_bitshl,
    b_bitshr,
    b_bitxor,
    b_bool,
    b_ceil,
    b_float,
    b_floor,
    b_int,
    b_max,
    b_mean,
    b_median,
    b_min,
    b_round,
)
from kdeps.expr.builtins.operators import op_contains, op_ends_with, op_matches, op_starts_with
from kdeps.expr.builtins.predicates import (
    p_all,
    p_any,
    p_count,
    p_filter,
    p_find,
    p_find_index,
    p_find_last,
    p_find_last_index,
    p_group_by,
    p_map,
    p_none,
    p_one,
    p_reduce,
    p_sort_by,
    p_sum,
)
from kdeps.expr.builtins.strings import (
    b_has_prefix,
    b_has_suffix,
    b_index_of,
    b_join,
    b_last_index_of,
    b_len,
    b_lower,
    b_repeat,
    b_replace,
    b_split,
    b_split_after,
    b_trim,
    b_trim_prefix,
    b_trim_suffix,
    b_upper,
)

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
