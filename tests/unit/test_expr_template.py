"""`{{ }}` templates, single-pass substitution and the bare-expression rule."""

from __future__ import annotations

from typing import Any

import pytest

from kdeps.errors import ExprError
from kdeps.expr import Env, is_bare_expression, render

DATA: dict[str, Any] = {
    "name": "Ann",
    "count": 3,
    "price": 2.0,
    "ratio": 0.25,
    "big": 1234567.0,
    "flag": True,
    "user": {"name": "Ann", "tags": ["a", "b"]},
    "list": [1, "two", None],
    "nested": "{{ 7*6 }}",
    "evil": "{{ get('secret') }}",
    "secret": "s3cr3t",
}


def host_get(key: str, *_: Any) -> Any:
    return DATA.get(key)


ENV = Env(
    functions={
        "get": host_get,
        "info": lambda field: {"requestId": "req-1"}.get(field),
        "llm": {"response": lambda rid: f"answer from {rid}"},
    },
    variables={"item": {"x": 1}},
)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ get('user') }}", {"name": "Ann", "tags": ["a", "b"]}),
        ("  {{ get('count') }}  ", 3),
        ("{{get('count')}}", 3),
        ("{{ get('missing') }}", None),
        ("{{ get('flag') }}", True),
        ("{{ get('count') + 1 }}", 4),
        ("{{ {a: {b: 1}} }}", {"a": {"b": 1}}),
        ("{{ '}}' }}", "}}"),
        ("{{ [1, 2] }}", [1, 2]),
    ],
)
def test_whole_value_template_keeps_native_type(template: str, expected: Any) -> None:
    result = render(template, ENV)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hello {{ get('name') }}!", "Hello Ann!"),
        ("{{ get('name') }} has {{ get('count') }} items", "Ann has 3 items"),
        ("Missing: [{{ get('missing') }}]", "Missing: []"),
        ("Price {{ get('price') }}", "Price 2"),  # whole floats print like Go's %v
        ("Ratio {{ get('ratio') }}", "Ratio 0.25"),
        ("Big {{ get('big') }}", "Big 1.234567e+06"),
        ("Flag {{ get('flag') }}", "Flag true"),
        ("User {{ get('user') }}", 'User {"name":"Ann","tags":["a","b"]}'),
        ("List {{ get('list') }}", 'List [1,"two",null]'),
        ("{{ get('count') }}{{ get('count') }}", "33"),
        ("Id={{ info('requestId') }}", "Id=req-1"),
        ("LLM: {{ llm.response('chat') }}", "LLM: answer from chat"),
        ("no braces at all", "no braces at all"),
        ("a } b }} c", "a } b }} c"),
        ("Status: {{ get('count') >= 3 ? 'many' : 'few' }}.", "Status: many."),
        ("{{ get('name') }}\n{{ upper(get('name')) }}", "Ann\nANN"),
    ],
)
def test_interpolation(template: str, expected: str) -> None:
    assert render(template, ENV) == expected


def test_substitution_is_single_pass() -> None:
    # A value that itself looks like a template is never evaluated again.
    assert render("{{ get('nested') }}", ENV) == "{{ 7*6 }}"
    assert render("Value: {{ get('nested') }}", ENV) == "Value: {{ 7*6 }}"
    assert render("{{ get('evil') }} and {{ get('name') }}", ENV) == "{{ get('secret') }} and Ann"
    assert "s3cr3t" not in render({"a": "{{ get('evil') }}", "b": ["x {{ get('evil') }}"]}, ENV).__repr__()


def test_render_walks_dicts_and_lists() -> None:
    value = {
        "prompt": "Hi {{ get('name') }}",
        "count": "{{ get('count') }}",
        "n": 5,
        "none": None,
        "flag": False,
        "plain": "What is AI?",
        "bare": "get('name')",
        "nested": [{"deep": "{{ get('count') * 2 }}"}, "literal", 7],
        "{{ get('name') }}": "key rendered",
        "{not a template}": "kept",
    }
    assert render(value, ENV) == {
        "prompt": "Hi Ann",
        "count": 3,
        "n": 5,
        "none": None,
        "flag": False,
        "plain": "What is AI?",
        "bare": "Ann",
        "nested": [{"deep": 6}, "literal", 7],
        "Ann": "key rendered",
        "{not a template}": "kept",
    }
    assert value["prompt"] == "Hi {{ get('name') }}"  # the input is not mutated


def test_bare_false_keeps_plain_strings_literal() -> None:
    assert render("get('name')", ENV, bare=False) == "get('name')"
    assert render({"a": "get('name')"}, ENV, bare=False) == {"a": "get('name')"}
    assert render("{{ get('name') }}", ENV, bare=False) == "Ann"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("get('name')", True),
        ("  get('name')  ", True),
        ("get('count') + 1", True),
        ("get('q') != ''", True),
        ("info('requestId')", True),
        ("llm.response('chat')", True),
        ("get('a') ?? get('b')", True),
        ("Hello, world!", False),
        ("json", False),
        ("What is AI?", False),
        ("get ready for the show", False),
        ("get('q') is what you asked", False),  # does not parse completely
        ("get(", False),
        ("upper('x')", False),  # a builtin alone shows no intent (KDeps keeps it literal)
        ("upper(get('name'))", True),
        ("len(get('name'))", True),
        ("default(get('x'), 1)", True),
        ("item.x", True),  # property access on a known object
        ("item.x > 0 ? 'yes' : 'no'", True),
        ("llm.unknown", True),
        ("application/json", False),  # unknown names: literal text
        ("text/html; charset=utf-8", False),
        ("Mozilla/5.0 (X11; Linux x86_64)", False),
        ("pros - cons", False),
        ("N/A", False),
        ("Bearer abc.def.ghi", False),
        ("config.yaml", False),
        ("1 + 1", True),
        ("What is 2 + 2?", False),
        ("unknownFn('x')", False),
        ("{{ get('name') }}", False),
        ("", False),
        ("https://example.com/get('x')", False),
        ("get('a'); get('b')", False),  # a sequence is not one expression
    ],
)
def test_bare_expression_rule(text: str, expected: bool) -> None:
    assert is_bare_expression(text, ENV) is expected


def test_bare_expression_is_evaluated_by_render() -> None:
    assert render("get('count') + 1", ENV) == 4
    assert render("llm.response('x')", ENV) == "answer from x"
    assert render("Hello, world!", ENV) == "Hello, world!"


def test_unterminated_template_reports_position() -> None:
    with pytest.raises(ExprError) as info:
        render("Hello {{ get('name') ", ENV)
    err = info.value
    assert "unterminated '{{'" in err.message
    assert err.pos == 6
    assert str(err).splitlines()[2] == "  " + " " * 6 + "^"


def test_template_expression_errors_point_into_the_expression() -> None:
    with pytest.raises(ExprError) as info:
        render("Total: {{ get('name') * 2 }}", ENV)
    assert info.value.source == "get('name') * 2"
    assert info.value.pos == 12
    with pytest.raises(ExprError, match="empty expression"):
        render("x {{ }} y", ENV)
    with pytest.raises(ExprError, match="unexpected"):
        render("{{ get('a') get('b') }}", ENV)


def test_non_strings_are_returned_unchanged() -> None:
    for value in (None, 1, 2.5, True):
        assert render(value, ENV) is value
