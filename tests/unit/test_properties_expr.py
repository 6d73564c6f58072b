"""Property tests: any expression or template string either evaluates or fails with a typed
`KdepsError` (an ExprError with the source and position) — never a Python exception of another kind."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kdeps.errors import KdepsError
from kdeps.expr import Env, compile_template, evaluate, render

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DATA = {"q": "What is AI?", "n": 3, "items": [1, 2.5, "x", None, True],
        "user": {"name": "Ada", "tags": ["a"]}, "empty": "", "zero": 0, "nested": {"a": {"b": [{"c": 1}]}}}


def _env() -> Env:
    def get(key: Any = None, source: Any = None) -> Any:
        return DATA.get(key) if isinstance(key, str) else None

    return Env(functions={"get": get, "set": lambda key, value=None: value})


# Pieces an expression is made of: names, literals, operators, punctuation, builtins, odd characters.
TOKENS = [
    "get('q')", "get('n')", "get('items')", "get('user')", "get('nested')", "get('missing')", "get(", "q",
    "items", "user", "nil", "true", "false", "1", "0", "-1", "2.5", "1e308", "9223372036854775807", "0x1F",
    "'a'", '"b"', "`raw`", "''", "'\\n'", "'\\u00e9'", "'", '"', "+", "-", "*", "/", "%", "**", "^", "==",
    "!=", "<", "<=", ">", ">=", "&&", "||", "!", "not", "and", "or", "??", "?:", "?", ":", "in", "not in",
    "contains", "matches", "startsWith", "endsWith", "..", ".", "?.", "[", "]", "(", ")", "{", "}", ",",
    "|", ";", "let", "=", "#", "#index", "len", "upper", "lower", "trim", "split", "join", "replace",
    "filter", "map", "all", "any", "count", "sum", "reduce", "first", "last", "min", "max", "int", "float",
    "string", "keys", "values", "toJSON", "fromJSON", "now", "duration", "date", "abs", "ceil", "floor",
    "round", "sort", "sortBy", "groupBy", "repeat", "indexOf", "toBase64", "fromBase64", "uniq", "flatten",
    "__class__", "__import__", "os", "type", "__subclasses__", "{{", "}}", " ", "\t", "\n", "\\", "$", "@",
    "\x00", "é", "🙂",
]

token_soup = st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join)

leaf = st.one_of(
    st.sampled_from(["get('q')", "get('n')", "get('items')", "get('user')", "get('missing')", "nil", "true",
                     "false", "''", "get('nested').a.b[0]", "get('user')?.name", "[]", "{}"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=8).map(lambda s: "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"),
)
BINARY = ["+", "-", "*", "/", "%", "**", "==", "!=", "<", ">=", "&&", "||", "??", "in", "contains",
          "matches", "startsWith", ".."]
FUNCTIONS = ["len", "upper", "trim", "int", "float", "string", "first", "last", "keys", "toJSON", "fromJSON",
             "abs", "max", "min", "split", "join", "duration", "date", "sort", "repeat", "indexOf", "filter",
             "map", "count"]


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(BINARY), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["!", "-", "not "]), children).map(lambda t: f"{t[0]}{t[1]}"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        st.tuples(st.sampled_from(FUNCTIONS), st.lists(children, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(children, st.sampled_from(["a", "name", "b", "__class__"])).map(lambda t: f"{t[0]}.{t[1]}"),
        st.lists(children, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.tuples(children, st.sampled_from(["map(#, # * 2)", "filter(# > 1)", "len()", "upper()"])).map(
            lambda t: f"{t[0]} | {t[1]}"),
    )


structured = st.recursive(leaf, _combine, max_leaves=8)


def _only_typed_errors(call: Any, *args: Any) -> None:
    try:
        call(*args)
    except KdepsError as err:
        assert str(err)  # a message the user can read
    except RecursionError:  # pragma: no cover - reported as a bug below
        raise AssertionError(f"RecursionError for {args[0]!r}") from None


@SETTINGS
@given(token_soup)
@example("get('items')[99999999999999999999]")
@example("1 / 0")
@example("9223372036854775807 + 1")
@example("'a' matches '('")
@example("().__class__")
@example("get('q') ?? ")
@example("[" * 300 + "]" * 300)
def test_token_soup_raises_only_typed_errors(source: str) -> None:
    _only_typed_errors(evaluate, source, _env())


@SETTINGS
@given(structured)
def test_structured_expressions_raise_only_typed_errors(source: str) -> None:
    _only_typed_errors(evaluate, source, _env())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_raises_only_typed_errors(source: str) -> None:
    _only_typed_errors(evaluate, source, _env())


@SETTINGS
@given(st.lists(st.one_of(st.text(max_size=6), st.just("{{"), st.just("}}"), token_soup, structured),
                max_size=6).map("".join))
def test_templates_raise_only_typed_errors(template: str) -> None:
    def both() -> None:
        compile_template(template)
        render(template, _env())

    _only_typed_errors(lambda _source: both(), template)
