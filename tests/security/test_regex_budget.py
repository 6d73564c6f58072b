"""Bounded work in expressions: `matches` runs on RE2 (linear time), and no evaluation holds the event
loop for longer than the expression budget (~50 ms), whatever the request data."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from kdeps.errors import ExprError
from kdeps.expr import Env, evaluate
from tests.agents import make_agent
from tests.e2e.server_utils import running

HOSTILE = "a" * 27 + "!"  # 28 bytes: ~2**27 steps for a backtracking engine on ^(a+)+$


def _env(**values: object) -> Env:
    return Env(functions={"get": lambda key, *_: values.get(key)})


def _bounded(source: str, env: Env, seconds: float = 3.0) -> object:
    """Evaluate `source`; fail if it held the thread for more than `seconds`. The bound is a denial-of-
    service line with a wide margin (the old engine took 6-12 s here, RE2 and the budget take ms), not
    a speed measurement: those live in bench/."""
    started = time.monotonic()
    try:
        return evaluate(source, env)
    finally:
        held = time.monotonic() - started
        assert held < seconds, f"{source!r} held the event loop for {held:.1f} s"


@pytest.mark.parametrize("pattern", ["^(a+)+$", "^(a|a)*$", "(a*)*b", "^(\\w+\\s?)*$"])
def test_nested_quantifiers_do_not_backtrack(pattern: str) -> None:
    assert _bounded(f"get('q') matches {pattern!r}", _env(q=HOSTILE), seconds=3) is False
    # and ordinary patterns match as before
    env = _env(email="ann@example.com", code="AB-1234")
    assert evaluate("get('email') matches '^[^@]+@[^@]+\\\\.[a-z]{2,}$'", env) is True
    assert evaluate("get('code') matches '^[A-Z]{2}-\\\\d{4}$'", env) is True
    assert evaluate("get('code') matches '(?i)^ab-'", env) is True
    assert evaluate("matches(get('code'), 'x')", env) is False


@pytest.mark.parametrize(("pattern", "feature"), [
    ("(a)\\\\1", "backreferences"),
    ("(?P<x>a)(?P=x)", "backreferences"),
    ("a(?=b)", "lookahead and lookbehind"),
    ("(?<!x)a", "lookahead and lookbehind"),
    ("(?>a+)b", "atomic groups"),
])
def test_unsupported_features_are_named(pattern: str, feature: str) -> None:
    with pytest.raises(ExprError, match=feature) as info:
        evaluate(f"'aa' matches '{pattern}'", _env())
    assert "RE2" in str(info.value)


def test_a_huge_loop_is_stopped() -> None:
    with pytest.raises(ExprError, match="took too long"):
        _bounded("reduce(1..1000000, #acc + #, 0)", _env())
    # ordinary loops still fit in the budget
    assert evaluate("sum(map(1..1000, # * 2))", _env()) == 1001000
    assert evaluate("len(filter(get('xs'), # > 500))", _env(xs=list(range(2000)))) == 1499
    assert evaluate("sort(get('xs'))[0]", _env(xs=list(range(5000, 0, -1)))) == 1


def test_sorting_huge_request_data_is_stopped() -> None:
    data = [(i * 7919) % 1_000_003 for i in range(1_000_000)]
    with pytest.raises(ExprError, match="over the limit"):
        _bounded("sort(get('xs'))", _env(xs=data))
    dates = [datetime(2020, 1, 1) + timedelta(seconds=(i * 7919) % 100_003) for i in range(100_000)]
    with pytest.raises(ExprError, match="took too long"):  # compared pair by pair in Python: ticks
        _bounded("sort(get('xs'))", _env(xs=dates))


def test_building_too_much_is_stopped() -> None:
    with pytest.raises(ExprError, match=r"too much data|took too long"):
        _bounded("map(1..5000, 1..5000)", _env())


async def test_a_hostile_matches_request_does_not_stall_the_server(tmp_path: Path) -> None:
    agent = make_agent(tmp_path / "agent", {"response": """\
        metadata:
          actionId: response
        run:
          preflightCheck:
            validations:
              - "!(get('q') matches '^(a+)+$')"
            error:
              code: 400
              message: q must not be all a's
          apiResponse:
            success: true
            response:
              q: get('q')
        """})
    with running(agent) as server:
        url = server.url + "/api/v1/run"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=4)) as http:
            async def ask(q: str) -> int:
                async with http.post(url, json={"q": q}) as r:
                    return r.status

            # 31 bytes: a backtracking engine needs 8x the 28-byte case, far past the client's 4 s
            hostile, plain = await asyncio.gather(ask("a" * 30 + "!"), ask("hello"))
    assert (hostile, plain) == (200, 200)
