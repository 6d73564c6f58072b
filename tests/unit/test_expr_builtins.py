"""Each builtin function, as a table of calls and results (plus the errors users can hit)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kdeps.errors import ExprError
from kdeps.expr import Env, evaluate

ENV = Env(variables={"user": {"profile": {"address": {"city": "NYC"}}}, "cfg": {"http": {"timeout": 0}}})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # strings
        ("len('hello')", 5),
        ("len('北京')", 2),
        ("len([1, 2, 3])", 3),
        ("len({a: 1, b: 2})", 2),
        ("upper('hello')", "HELLO"),
        ("lower('HeLLo')", "hello"),
        ("trim('  Hello  ')", "Hello"),
        ("trim('__Hello__', '_')", "Hello"),
        ("trimPrefix('HelloWorld', 'Hello')", "World"),
        ("trimSuffix('HelloWorld', 'World')", "Hello"),
        ("trimPrefix(' x')", "x"),
        ("split('apple,orange,grape', ',')", ["apple", "orange", "grape"]),
        ("split('apple,orange,grape', ',', 2)", ["apple", "orange,grape"]),
        ("split('abc', '')", ["a", "b", "c"]),
        ("split('a,b', ',', 0)", []),
        ("splitAfter('apple,orange,grape', ',')", ["apple,", "orange,", "grape"]),
        ("splitAfter('apple,orange,grape', ',', 2)", ["apple,", "orange,grape"]),
        ("replace('Hello World', 'World', 'Universe')", "Hello Universe"),
        ("replace('aaa', 'a', 'b', 2)", "bba"),
        ("repeat('Hi', 3)", "HiHiHi"),
        ("repeat('Hi', 0)", ""),
        ("join(['apple', 'orange', 'grape'], ',')", "apple,orange,grape"),
        ("join(['a', 'b'])", "ab"),
        ("join(['a', 1, 2.5, true])", "a12.5true"),
        ("indexOf('apple pie', 'pie')", 6),
        ("indexOf('apple', 'z')", -1),
        ("lastIndexOf('apple pie apple', 'apple')", 10),
        ("hasPrefix('HelloWorld', 'Hello')", True),
        ("hasSuffix('HelloWorld', 'World')", True),
        ("contains('important note', 'important')", True),
        ("contains(['a', 'b'], 'b')", True),
        ("contains({a: 1}, 'a')", True),
        ("startsWith('https://x', 'https://')", True),
        ("endsWith('a.jpg', '.jpg')", True),
        ("matches('bob@example.com', '^[a-z]+@[a-z]+\\\\.[a-z]{2,}$')", True),
        ("matches('nope', '^\\\\d+$')", False),
        # numbers
        ("abs(-5)", 5),
        ("abs(-1.5)", 1.5),
        ("ceil(1.5)", 2.0),
        ("ceil(2)", 2.0),
        ("floor(1.5)", 1.0),
        ("floor(-1.2)", -2.0),
        ("round(1.5)", 2.0),
        ("round(2.5)", 3.0),  # half away from zero, like Go
        ("round(-2.5)", -3.0),
        ("round(1.4)", 1.0),
        ("int('123')", 123),
        ("int(' -7 ')", -7),
        ("int(3.9)", 3),
        ("int(-3.9)", -3),
        ("int(5)", 5),
        ("float('123.45')", 123.45),
        ("float(2)", 2.0),
        ("float('1e3')", 1000.0),
        ("bool('true')", True),
        ("bool('0')", False),
        ("bool(1)", True),
        ("bool(0)", False),
        ("bool(nil)", False),
        ("max(5, 7)", 7),
        ("max([1, 2, 3])", 3),
        ("max(1, 2.5)", 2.5),
        ("min(5, 7)", 5),
        ("min([4, 2, 8])", 2),
        ("max('a', 'c', 'b')", "c"),
        ("max([])", None),
        ("mean([1, 2, 3])", 2.0),
        ("mean([])", 0.0),
        ("mean(1, 2)", 1.5),
        ("median([1, 2, 3])", 2.0),
        ("median([4, 1, 3, 2])", 2.5),
        ("sum([1, 2, 3])", 6),
        ("sum([1, 2.5])", 3.5),
        ("sum([])", 0),
        ("bitand(0b1010, 0b1100)", 0b1000),
        ("bitor(0b1010, 0b1100)", 0b1110),
        ("bitxor(0b1010, 0b1100)", 0b110),
        ("bitnand(0b1010, 0b1100)", 0b10),
        ("bitnot(0b1010)", -0b1011),
        ("bitshl(0b101101, 2)", 0b10110100),
        ("bitshr(0b101101, 2)", 0b1011),
        # arrays and maps
        ("first([1, 2, 3])", 1),
        ("first([])", None),
        ("first(nil)", None),
        ("last([1, 2, 3])", 3),
        ("take([1, 2, 3, 4], 2)", [1, 2]),
        ("take([1], 5)", [1]),
        ("slice([1, 2, 3, 4, 5], 1, 3)", [2, 3]),
        ("slice([1, 2, 3, 4, 5], -2, 5)", [4, 5]),
        ("keys({name: 'John', age: 30})", ["name", "age"]),
        ("values({name: 'John', age: 30})", ["John", 30]),
        ("toPairs({name: 'John', age: 30})", [["name", "John"], ["age", 30]]),
        ("fromPairs([['name', 'John'], ['age', 30]])", {"name": "John", "age": 30}),
        ("reverse([3, 1, 4])", [4, 1, 3]),
        ("reverse(reverse([3, 1, 4]))", [3, 1, 4]),
        ("uniq([1, 2, 3, 2, 1])", [1, 2, 3]),
        ("uniq([1, 1.0, true, 'a', 'a', [1], [1]])", [1, True, "a", [1]]),
        ("concat([1, 2], [3, 4])", [1, 2, 3, 4]),
        ("concat([1], [2], [[3]])", [1, 2, [3]]),
        ("flatten([1, 2, [3, 4]])", [1, 2, 3, 4]),
        ("flatten([1, [2, [3, [4]]]])", [1, 2, 3, 4]),
        ("sort([3, 1, 4])", [1, 3, 4]),
        ("sort([3, 1, 4], 'desc')", [4, 3, 1]),
        ("sort(['b', 'a', 'c'])", ["a", "b", "c"]),
        ("sort([2, 1.5, 3])", [1.5, 2, 3]),
        ("get({a: 1}, 'a')", 1),
        ("get([1, 2, 3], 1)", 2),
        ("get([1, 2, 3], -1)", 3),
        ("get([1, 2, 3], 9)", None),
        ("get(nil, 'a')", None),
        # conversion and encoding
        ("type(42)", "int"),
        ("type(4.2)", "float"),
        ("type('x')", "string"),
        ("type(true)", "bool"),
        ("type(nil)", "nil"),
        ("type([1])", "array"),
        ("type({})", "map"),
        ("type(duration('1s'))", "time.Duration"),
        ("string(123)", "123"),
        ("string(1.0)", "1"),
        ("string(2.5)", "2.5"),
        ("string(1e6 * 1.0)", "1e+06"),
        ("string(123456.0)", "123456"),
        ("string(0.0001)", "0.0001"),
        ("string(0.00001)", "1e-05"),
        ("string(true)", "true"),
        ("string(nil)", "<nil>"),
        ("string([1, 'a'])", "[1 a]"),
        ("string({b: 2, a: 1})", "map[a:1 b:2]"),
        ("toJSON({name: 'John', age: 30})", '{"name":"John","age":30}'),
        ("toJSON([1, 2.5, nil, true, 'é'])", '[1,2.5,null,true,"é"]'),
        ("fromJSON('{\"name\": \"John\", \"age\": 30}')", {"name": "John", "age": 30}),
        ("fromJSON('[1, 2]')[1]", 2),
        ("fromJSON('not json')", None),
        ("fromJSON('NaN')", None),
        ("toBase64('Hello World')", "SGVsbG8gV29ybGQ="),
        ("fromBase64('SGVsbG8gV29ybGQ=')", "Hello World"),
        ("urlencode('a b&c=d')", "a+b%26c%3Dd"),
        # KDeps helpers
        ("json({name: 'Alice', age: 30})", '{"name":"Alice","age":30}'),
        ("json('x')", '"x"'),
        ("debug({a: [1]})", '{\n  "a": [\n    1\n  ]\n}'),
        ("safe(user, 'profile.address.city')", "NYC"),
        ("safe(user, 'profile.address.country')", None),
        ("safe(user, 'profile.address.city.zip')", None),
        ("safe(nil, 'a')", None),
        ("safe(cfg, 'http.timeout')", 0),
        ("default(nil, 'Guest')", "Guest"),
        ("default('', 10)", 10),
        ("default(0, 10)", 0),
        ("default(false, true)", False),
        ("default('Ann', 'Guest')", "Ann"),
        ("default(safe(user, 'profile.zip'), 'Unknown')", "Unknown"),
    ],
)
def test_builtin(source: str, expected: Any) -> None:
    result = evaluate(source, ENV)
    assert result == expected
    assert type(result) is type(expected)


def test_group_by_and_sort_by() -> None:
    people = [{"n": "a", "k": "x"}, {"n": "b", "k": "y"}, {"n": "c", "k": "x"}]
    env = Env(variables={"people": people})
    assert evaluate("groupBy(people, .k)", env) == {"x": [people[0], people[2]], "y": [people[1]]}
    assert evaluate("sortBy(people, .n, 'desc') | map(.n)", env) == ["c", "b", "a"]


def test_now_is_a_current_date() -> None:
    from datetime import datetime

    value = evaluate("now()", Env())
    assert isinstance(value, datetime)
    assert value.tzinfo is not None
    assert abs((datetime.now(value.tzinfo) - value).total_seconds()) < 5


def test_debug_is_valid_json() -> None:
    text = evaluate("debug({a: [1, {b: nil}], when: date('2024-01-02')})", Env())
    assert json.loads(text) == {"a": [1, {"b": None}], "when": "2024-01-02T00:00:00Z"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("int('x')", "invalid operation: int('x')"),
        ("int('1_000')", "invalid operation: int("),
        ("float('abc')", "invalid operation: float('abc')"),
        ("float('inf')", "invalid operation: float('inf')"),
        ("bool('maybe')", "invalid operation: bool('maybe')"),
        ("abs('x')", "abs() expects a number, got string"),
        ("keys([1])", "keys() expects a map, got array"),
        ("sort([1, 'a'])", "invalid operation: string < int"),
        ("sort([1], 'up')", "order must be 'asc' or 'desc'"),
        ("repeat('a', -1)", "count >= 0"),
        ("fromBase64('***')", "illegal base64 data"),
        ("fromPairs([[1, 2, 3]])", "expects [key, value] pairs"),
        ("matches('a', '(')", "invalid regular expression"),
        ("reduce([], #acc + #)", "needs an initial value"),
        ("min()", "expects at least 1 argument"),
        ("take([1], 'x')", "take() expects an integer, got string"),
        ("trim(nil)", "trim() expects a string, got nil"),
    ],
)
def test_builtin_errors(source: str, message: str) -> None:
    with pytest.raises(ExprError) as info:
        evaluate(source, ENV)
    assert message in info.value.message
    assert info.value.source == source
