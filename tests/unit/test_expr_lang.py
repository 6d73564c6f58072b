"""Operators, precedence, values and errors of the expression language (cases follow expr-lang's tests)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from kdeps.errors import ExprError
from kdeps.expr import Env, compile_expression, evaluate

DATA: dict[str, Any] = {
    "q": "hello",
    "n": 3,
    "price": 2.5,
    "empty": "",
    "users": [{"name": "Ann", "age": 31, "tier": "gold"}, {"name": "Bob", "age": 17, "tier": "free"}],
    "user": {"profile": {"address": {"city": "NYC"}}},
}


def host_get(key: str, *_: Any) -> Any:
    return DATA.get(key)


ENV = Env(
    functions={"get": host_get, "llm": {"response": lambda rid: f"reply of {rid}"}},
    variables={"item": {"name": "widget", "tags": ["a", "b"], "n": None}, "arr": [1, 2, 3, 4, 5]},
)


def ev(source: str) -> Any:
    return evaluate(source, ENV)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # arithmetic and precedence
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("2 + 2 == 4", True),
        ("8 % 3", 2),
        ("-7 % 3", -1),  # Go truncates toward zero
        ("7 % -3", 1),
        ("4 / 2", 2.0),
        ("7 / 2", 3.5),
        ("2 ** 8", 256.0),
        ("2 ^ 8", 256.0),
        ("2 ** 3 ** 2", 512.0),  # right associative
        ("-2 ** 2", -4.0),  # unary minus binds looser than **
        ("-(2-5)**3-2/(+4-3)+-2", 23.0),
        ("10 - 4 - 3", 3),  # left associative
        ("1_000 + 0x10 + 0b11 + 0o7", 1026),
        (".5 + 1e3", 1000.5),
        ("1.5e-3", 0.0015),
        ("0.1 + 0.2 > 0.3", True),
        ("3 * 1.5", 4.5),
        ("get('n') / 2", 1.5),
        ("get('price') * get('n')", 7.5),
        # comparisons
        ("1 < 2", True),
        ("2 <= 2", True),
        ("3 > 2.5", True),
        ("'a' < 'b'", True),
        ("'b' >= 'a'", True),
        ("1 < 2 < 3", True),
        ("1 > 2 < 3", False),
        ("1 < 2 < 3 > 4", False),
        ("1 < 2 < 3 == true", True),
        ("1 == 1.0", True),
        ("true == 1", False),
        ("'1' == 1", False),
        ("[1, 2] == [1, 2]", True),
        ("[1, 2] == [2, 1]", False),
        ("{a: 1} == {a: 1.0}", True),
        ("nil == nil", True),
        ("0 == nil || 'str' == nil || true == nil", False),
        ("nil != ''", False),
        ("nil == ''", True),
        ("get('missing') != ''", False),  # a missing value counts as empty (preflight idiom)
        ("get('q') != ''", True),
        ("get('empty') == ''", True),
        # logic
        ("true && false || true", True),
        ("true and not false", True),
        ("!true", False),
        ("not (1 > 2)", True),
        ("false && 1 / 0 > 1", False),  # short circuit
        ("true || nil.x", True),
        ("true && 'x'", "x"),  # the right side is returned as is, like expr-lang
        # strings
        ("'hello' + ' ' + \"world\"", "hello world"),
        ("'foobar' contains 'bar'", True),
        ("'foobar' startsWith 'foo'", True),
        ("'foobar' endsWith 'bar'", True),
        ("'foobar' not contains 'baz'", True),
        ("'foo' + 'bar' not matches 'foobar'", False),
        ("get('q') matches '^h.l+o$'", True),
        ("nil contains 'a'", False),
        ("'a\\tb\\n'", "a\tb\n"),
        ("'\\u00e9\\x41\\101\\u{1F600}'", "éAA\U0001f600"),
        ("`raw \\n text`", "raw \\n text"),
        ("'it\\'s'", "it's"),
        ("\"say \\\"hi\\\"\"", 'say "hi"'),
        # membership and ranges
        ("1 in [1, 2, 3]", True),
        ("'foo' in {foo: 0, bar: 1}", True),
        ("'baz' in {foo: 0}", False),
        ("1 in [1.5] || 1 not in [1]", False),
        ("2 not in [1]", True),
        ("0 in -1..1 and 1 in 1..1", True),
        ("4 in 5..1", False),
        ("5 in 1..1000000000", True),  # checked without building the range
        ("1..3", [1, 2, 3]),
        ("4..0", []),
        ("(0..10)[5]", 5),
        ("'x' in nil", False),
        # ternary, elvis, nil coalescing
        ("(true ? 0+1 : 2+3) + (false ? -1 : -2)", -1),
        ("get('n') > 2 ? 'big' : 'small'", "big"),
        ("false ? 1 : true ? 2 : 3", 2),
        ("nil ?? 1", 1),
        ("get('missing') ?? 'Anonymous'", "Anonymous"),
        ("get('empty') ?? 'fallback'", "fallback"),  # KDeps: nil or empty string
        ("get('q') ?? 'fallback'", "hello"),
        ("0 ?? 5", 0),
        ("nil ?? nil ?? 3", 3),
        ("(nil ?? 1) + 1", 2),
        ("'' ?: 'x'", "x"),
        ("'a' ?: 'x'", "a"),
        ("0 ?: 7", 7),
        ("if 1 > 2 { 333 * 2 + 1 } else { 444 }", 444),
        ("if 1 == 2 { 'no' } else if 1 == 1 { 'yes' } else { 'maybe' }", "yes"),
        # members, optional chaining, indexes, slices
        ("item.name", "widget"),
        ("item['name']", "widget"),
        ("item.missing", None),
        ("item.tags[1]", "b"),
        ("item.tags[-1]", "b"),
        ("item?.name", "widget"),
        ("nothing?.a.b.c", None),
        ("item.n?.x", None),
        ("nothing?.[1]?.[2]", None),
        ("[1, 2, 3]?.[0]", 1),
        ("[[1, 2], 3]?.[0]?.[1]", 2),
        ("[nil, 3]?.[0]?.[1]", None),
        ("get('user').profile.address.city", "NYC"),
        ("get('user')?.profile?.zip ?? 'none'", "none"),
        ("arr[1:4]", [2, 3, 4]),
        ("arr[1:-1]", [2, 3, 4]),
        ("arr[:3]", [1, 2, 3]),
        ("arr[3:]", [4, 5]),
        ("arr[:]", [1, 2, 3, 4, 5]),
        ("arr[-4:-1]", [2, 3, 4]),
        ("arr[4:2]", []),
        ("arr[10:]", []),
        ("'hello'[1:3]", "el"),
        ("'hello'[-1]", "o"),
        ("$env.arr[0]", 1),
        ("unknownVariable", None),
        # literals
        ("[1, 'a', nil, true]", [1, "a", None, True]),
        ("[1, 2,]", [1, 2]),
        ("{a: 1, 'b': 2, \"c\": 3, 4: 5}", {"a": 1, "b": 2, "c": 3, "4": 5}),
        ("{(1 + 1): 'two'}", {2: "two"}),
        ("{}", {}),
        ("[]", []),
        # pipes, let, sequences, comments
        ("get('q') | upper()", "HELLO"),
        ("'a,b' | split(',') | join('-')", "a-b"),
        ("arr | filter(# > 2) | map(# * 10)", [30, 40, 50]),
        ("let x = 42; x * 2", 84),
        ("let x = 1; let y = x + 1; x + y", 3),
        ("let name = item.name | upper(); 'Hi ' + name", "Hi WIDGET"),
        ("1; 2; 3", 3),
        ("1 /* one */ + 2 // two", 3),
        # host namespaces
        ("llm.response('chat')", "reply of chat"),
        ("upper(llm.response('x'))", "REPLY OF X"),
    ],
)
def test_expression_values(source: str, expected: Any) -> None:
    result = ev(source)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("filter(1..9, {# > 7})", [8, 9]),
        ("filter(1..9, # % 2 == 0)", [2, 4, 6, 8]),
        ("map(1..3, {# * #})", [1, 4, 9]),
        ("all(1..3, {# > 0})", True),
        ("any([], # > 0)", False),
        ("none(1..3, # > 3)", True),
        ("one([1, 2, 3], # == 2)", True),
        ("count(1..30, {# % 3 == 0})", 10),
        ("count([true, true, false])", 2),
        ("filter(get('users'), .age > 18)", [DATA["users"][0]]),
        ("map(get('users'), .name)", ["Ann", "Bob"]),
        ("map(get('users'), #.name)", ["Ann", "Bob"]),
        ("filter(get('users'), .age > 10 && .tier == 'gold') | map(.name)", ["Ann"]),
        ("map(get('users'), #index)", [0, 1]),
        ("find(get('users'), .name == 'Bob').age", 17),
        ("find(1..3, # > 5)", None),
        ("findIndex([1, 2, 3, 4], # > 2)", 2),
        ("findLast([1, 2, 3, 4], # > 2)", 4),
        ("findLastIndex([1, 2, 3, 4], # > 2)", 3),
        ("findLastIndex(1..9, # % 2 == 0)", 7),
        ("sum(get('users'), .age)", 48),
        ("sum(1..3, # * 2)", 12),
        ("reduce(1..9, #acc + #)", 45),
        ("reduce(1..3, #acc + #, 10)", 16),
        ("reduce(['a', 'b'], #acc + # + string(#index), '')", "a0b1"),
        ("groupBy(1..6, # % 2 == 0)", {False: [1, 3, 5], True: [2, 4, 6]}),
        ("sortBy(get('users'), .age) | map(.name)", ["Bob", "Ann"]),
        ("sortBy(get('users'), .age, 'desc') | map(.name)", ["Ann", "Bob"]),
        ("map(1..3, let x = #; let y = x * x; y * y)", [1, 16, 81]),
        ("map(1..2, let x = #; map(2..3, let y = #; x + y))", [[3, 4], [4, 5]]),
        ("filter(map(1..9, # * 2), # % 4 == 0)[-1]", 16),
        ("len(filter(1..99, # % 7 == 0))", 14),
        ("map([[1, 2]], #[1])", [2]),
        ("filter(get('users'), {let u = #; u.age > 18}) | map(.tier)", ["gold"]),
    ],
)
def test_predicates(source: str, expected: Any) -> None:
    assert ev(source) == expected


def test_dates_and_durations() -> None:
    assert ev("date('2023-08-14').Year()") == 2023
    assert ev("date('2023-08-14T10:00:00Z') < now()") is True
    assert ev("date('14/08/2023', '02/01/2006').Month()") == 8
    assert ev("format(date('2024-12-25 14:30:05'), '2006-01-02T15:04:05Z07:00')") == "2024-12-25T14:30:05Z"
    assert ev("date('2024-12-25').Format('01/02/2006')") == "12/25/2024"
    assert ev("duration('1h30m') + duration('30m') == duration('2h')") is True
    assert ev("duration('1h') > duration('1m')") is True
    assert ev("duration('1h') * 2") == timedelta(hours=2)
    assert ev("duration('1h').Hours()") == 1.0
    assert ev("string(duration('90s'))") == "1m30s"
    assert ev("string(duration('1.5s'))") == "1.5s"
    assert ev("string(duration('250ms'))") == "250ms"
    assert ev("date('2024-01-02') - date('2024-01-01') >= duration('24h')") is True
    assert ev("date('2024-01-01') + duration('24h') == date('2024-01-02')") is True
    assert ev("type(now())") == "time.Time"
    with pytest.raises(ExprError, match="invalid duration"):
        ev("duration('soon')")
    with pytest.raises(ExprError, match="invalid date"):
        ev("date('yesterday')")


def test_numbers_stay_ints_when_they_should() -> None:
    assert type(ev("1 + 2")) is int
    assert type(ev("4 / 2")) is float
    assert type(ev("2 ** 2")) is float
    assert type(ev("1 + 2.0")) is float
    assert math.isclose(ev("10 / 3"), 3.3333333333333335)


@pytest.mark.parametrize(
    ("source", "message", "caret"),
    [
        ("1 +", "unexpected end of expression", 3),
        ("(1", "expected ')'", 2),
        ("'abc", "literal not terminated", 0),
        ("1 @ 2", "unrecognized character '@'", 2),
        ("get('a') ?? 0 + 1", "cannot be mixed", 14),
        ("1 not 2", "after 'not'", 6),
        ("#", "only valid inside a predicate", 0),
        ("filter([1], # > 1; 2)", "wrap the predicate in braces", 17),
        ("9223372036854775808", "integer literal is too large", 0),
        ("1e400", "float literal is too large", 0),
        ("3abc", "bad number syntax", 0),
        ("{a 1}", "expected ':'", 3),
        ("map([1])", "expects at least 2 arguments", 7),
        ("/* open", "unclosed comment", 0),
        ("'\\q'", "unknown escape", 1),
    ],
)
def test_syntax_errors_show_source_and_caret(source: str, message: str, caret: int) -> None:
    with pytest.raises(ExprError) as info:
        compile_expression(source)
    err = info.value
    assert message in err.message
    assert err.source == source
    assert err.pos == caret
    lines = str(err).splitlines()
    assert lines[1] == "  " + source
    assert lines[2] == "  " + " " * caret + "^"


@pytest.mark.parametrize(
    ("source", "message", "caret"),
    [
        ("nil + 1", "invalid operation: nil + int", 4),
        ("1 + 'a'", "invalid operation: int + string", 2),
        ("'a' * 3", "invalid operation: string * int", 4),
        ("nil < 1", "invalid operation: nil < int", 4),
        ("[1] < [2]", "invalid operation: array < array", 4),
        ("1 / 0", "division by zero", 2),
        ("5 % 0", "integer divide by zero", 2),
        ("9223372036854775807 + 1", "integer overflow", 20),
        ("len(nil)", "invalid argument for len (type nil)", 0),
        ("!nil", "invalid operation: ! nil", 0),
        ("1 && true", "non-bool value (int) used with '&&'", 2),
        ("get('q') ? 1 : 2", "non-bool value (string) used as condition", 0),
        ("nothing.field", "cannot fetch 'field' from nil (use '?.' to allow nil)", 8),
        ("item.tags[5]", "index out of range: 5 (length is 2)", 9),
        ("item.tags['x']", "cannot fetch 'x' from array", 9),
        ("'x' in 'xyz'", "operator 'in' not defined on string", 4),
        ("uppr('x')", "unknown function 'uppr' (did you mean 'upper'?)", 0),
        ("gett('q')", "unknown function 'gett' (did you mean 'get'?)", 0),
        ("llm.respons('x')", "unknown function 'llm.respons' (did you mean 'llm.response'?)", 4),
        ("llm('x')", "'llm' is a namespace", 0),
        ("len(1, 2)", "len() expects 1 argument, got 2", 0),
        ("upper(1)", "upper() expects a string, got int", 0),
        ("get('q').toLowerCase()", "cannot call method 'toLowerCase' on string", 9),
        ("filter(nil, # > 1)", "filter() expects an array, got nil", 0),
        ("filter([1, 2], #)", "filter() predicate must return a bool, got int", 0),
        ("1 + get('q') * 2", "invalid operation: string * int", 13),
    ],
)
def test_runtime_errors_show_source_and_caret(source: str, message: str, caret: int) -> None:
    with pytest.raises(ExprError) as info:
        ev(source)
    err = info.value
    assert message in err.message
    assert err.source == source
    assert err.pos == caret
    assert str(err).splitlines()[2] == "  " + " " * caret + "^"


def test_compile_is_cached_and_reusable() -> None:
    first = compile_expression("get('n') * 2")
    assert compile_expression("get('n') * 2") is first
    assert first.source == "get('n') * 2"
    assert first.run(ENV) == 6
    other = Env(functions={"get": lambda key: 21})
    assert first.run(other) == 42  # the program holds no state between runs
    assert first.run(ENV) == 6


def test_host_functions_win_over_builtins_and_get_falls_back() -> None:
    # Without a host `get`, expr-lang's get(container, key) builtin applies.
    assert evaluate("get({a: 1}, 'a')", Env()) == 1
    assert evaluate("get([1, 2], 5)", Env()) is None
    assert evaluate("upper('x')", Env(functions={"upper": lambda s: "host"})) == "host"
    # Predicate builtins keep their closure syntax even if a host function has the name.
    assert evaluate("map([1], # + 1)", Env(functions={"map": lambda *a: "host"})) == [2]


def test_callable_namespace_serves_both_call_forms() -> None:
    class ItemApi(dict):  # both callable and a mapping, as the engine may supply for `item`
        def __call__(self, what: str) -> Any:
            return {"current": "x", "index": 2}[what]

    item = ItemApi(current=lambda: "x", index=lambda: 2)
    env = Env(functions={"item": item})
    assert evaluate("item('current') + string(item.index())", env) == "x2"


def test_host_errors() -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("boom")

    with pytest.raises(ExprError, match=r"explode\(\) failed: boom") as info:
        evaluate("1 + explode()", Env(functions={"explode": broken}))
    assert info.value.pos == 4

    from kdeps.errors import ResourceError

    def upstream(*_: Any) -> Any:
        raise ResourceError("llm", "upstream down")

    with pytest.raises(ResourceError):  # typed engine errors pass through unchanged
        evaluate("fail()", Env(functions={"fail": upstream}))


def test_let_bindings_do_not_leak_between_runs_or_scopes() -> None:
    program = compile_expression("let x = get('n'); x + 1")
    assert program.run(ENV) == 4
    assert evaluate("x", ENV) is None
    assert ev("let x = 1; map([10], let x = #; x) [0] + x") == 11


def test_non_string_source_is_an_expr_error() -> None:
    with pytest.raises(ExprError, match="must be a string"):
        compile_expression(["get('q')"])  # type: ignore[arg-type]
    with pytest.raises(ExprError, match="empty expression"):
        compile_expression("   ")
