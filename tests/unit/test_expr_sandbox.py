"""The expression language is a sandbox: injection payloads and resource abuse end in ExprError or nil."""

from __future__ import annotations

import contextlib
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdeps.errors import ExprError
from kdeps.expr import Env, compile_expression, evaluate, render

CALLS: list[tuple[Any, ...]] = []


def host_get(key: Any, *rest: Any) -> Any:
    CALLS.append((key, *rest))
    return {"q": "question", "config": {"debug": True}}.get(key) if isinstance(key, str) else None


ENV = Env(functions={"get": host_get}, variables={"config": {"items": "not a method", "x": 1}})


def _forbidden_results(value: Any) -> None:
    """Anything that is not plain data means Python leaked through."""
    if value is None or isinstance(value, bool | int | float | str | datetime | timedelta):
        return
    if isinstance(value, list):
        for item in value:
            _forbidden_results(item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _forbidden_results(key)
            _forbidden_results(item)
        return
    raise AssertionError(f"non-plain value escaped the sandbox: {value!r}")


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ __import__('os').system('id') }}",
        "{{ get.__globals__ }}",
        "{{ get.__globals__['os'] }}",
        "{{ ().__class__.__bases__[0].__subclasses__() }}",
        "{{ [].__class__.__base__.__subclasses__() }}",
        "{{ config.items() }}",
        "{{ config.__init__.__globals__ }}",
        "{{ self.__dict__ }}",
        "{{ lipsum.__globals__.os.popen('id').read() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ request.application.__globals__ }}",
        "{{ eval('1+1') }}",
        "{{ exec('import os') }}",
        "{{ getattr(get, '__globals__') }}",
        "{{ open('/etc/passwd') }}",
        "{{ globals() }}",
        "{{ type(1).__subclasses__() }}",
        "{{ now().__class__ }}",
        "{{ now().replace(year=1) }}",
        "{{ duration('1s').__class__ }}",
        "{{ get('q').__len__() }}",
        "{{ get('q')['__class__'] }}",
        "{{ {}['__class__'] }}",
        "{{ $env.__class__ }}",
        "{{ 7*7 }}{{ config.__class__ }}",
        "''.__class__",
        "__import__('os').system('id')",
        "get.__globals__",
        "().__class__.__bases__[0].__subclasses__()",
        "#{7*7}",
        "${7*7}",
        "<%= 7*7 %>",
    ],
)
def test_injection_payloads_never_reach_python(payload: str) -> None:
    try:
        result = render(payload, ENV)
    except ExprError:
        return
    _forbidden_results(result)
    assert "<class" not in str(result) and "module" not in str(result)


def test_dict_key_lookup_of_dunder_names_is_just_a_missing_key() -> None:
    assert evaluate("config.__class__", ENV) is None
    assert evaluate("config['__init__']", ENV) is None
    assert evaluate("config.items", ENV) == "not a method"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("'a' * 100000000", "invalid operation"),
        ("repeat('a', 1e9)", "too large"),
        ("repeat('ab', 600000)", "too large"),
        ("9 ** 9 ** 9", "overflow"),
        ("2 ** 100000", "overflow"),
        ("9223372036854775807 * 9223372036854775807", "integer overflow"),
        ("1..100000000", "too large"),
        ("map(1..100000000, #)", "too large"),
        ("replace(repeat('a', 1000), 'a', repeat('b', 2000))", "too large"),
        ("reduce(1..30, #acc + #acc, 'ab')", "too long"),
        ("reduce(1..40, concat(#acc, #acc), [1])", "too large"),
        ("join(map(1..1000, repeat('x', 1000)), '') + repeat('y', 1000)", "too long"),
        ("bitshl(1, 1000)", "out of range"),
    ],
)
def test_resource_limits(source: str, message: str) -> None:
    with pytest.raises(ExprError, match=message):
        evaluate(source, ENV)


def test_runaway_iteration_is_stopped_by_the_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from kdeps.expr import runtime

    monkeypatch.setattr(runtime, "MAX_SECONDS", 0.2)
    started = time.monotonic()
    with pytest.raises(ExprError, match="took too long"):
        evaluate("map(1..1000000, map(1..1000000, #))", ENV)
    assert time.monotonic() - started < 5


def test_deep_nesting_is_rejected() -> None:
    deep = [
        "(" * 10_000 + "1" + ")" * 10_000,
        "-" * 10_000 + "1",
        "!" * 5000 + "true",
        "[" * 5000 + "]" * 5000,
        "2" + " ** 2" * 5000,
        "1" + " + 1" * 5000,
        "a" + ".b" * 5000,
        "f(" * 3000 + ")" * 3000,
    ]
    for source in deep:
        with pytest.raises(ExprError, match=r"nested too deeply|too large"):
            compile_expression(source)


def test_source_length_cap() -> None:
    with pytest.raises(ExprError, match="too long"):
        compile_expression("1 + " * 20_000 + "1")


def test_moderate_nesting_still_works() -> None:
    assert evaluate("(" * 50 + "1" + ")" * 50, ENV) == 1
    assert evaluate("1" + " + 1" * 200, ENV) == 201


def test_untrusted_data_cannot_inject_templates() -> None:
    CALLS.clear()
    env = Env(functions={"get": lambda k: "{{ get('secret') }}" if k == "body" else host_get(k)})
    assert render("Body: {{ get('body') }}", env) == "Body: {{ get('secret') }}"
    assert render("{{ get('body') }}", env) == "{{ get('secret') }}"
    assert ("secret",) not in CALLS


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_random_text_raises_only_expr_errors(text: str) -> None:
    try:
        result = evaluate(text, ENV)
    except ExprError:
        return
    _forbidden_results(result)


_ALPHABET = [
    *"()[]{}.,:;?!#|&=<>+-*/%^'\"` \n_0123456789abcxyz",
    "get", "nil", "true", "in", "not", "let", "if", "else", "map", "filter", "??", "?.", "..", "**", "#index",
    "len", "upper", "'q'", "config", "matches", "contains", "{{", "}}",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_ALPHABET), max_size=25).map("".join))
def test_random_token_soup_raises_only_expr_errors(text: str) -> None:
    for run in (lambda: evaluate(text, ENV), lambda: render(text, ENV)):
        with contextlib.suppress(ExprError):
            run()
