"""`loop.at` (iterations at given dates/times) and the exec result object (`get('cmd').stdout`,
`.exitCode`, ...) as KDeps documents them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kdeps.errors import SpecErrors
from kdeps.spec import load_project
from kdeps.spec.units import next_fire_time
from tests.agents import run_agent
from tests.compat.test_layouts import write

LOOP_AT = """\
    actionId: response
    loop:
      while: "loop.index() < {limit}"
      maxIterations: 10
      at: {at}
    after:
      - "{{{{ set('tick', loop.count()) }}}}"
    apiResponse:
      response:
        tick: "{{{{ get('tick') }}}}"
    """


async def test_past_times_fire_at_once_and_the_entries_bound_the_loop(tmp_path: Path) -> None:
    at = '["2026-03-15T10:00:00Z", "2026-03-15T14:00:00+02:00", "2020-01-01"]'
    root = write(tmp_path, {"response.yaml": LOOP_AT.format(limit=10, at=at)})
    started = time.monotonic()
    reply = await run_agent(root, {})
    assert reply.status == 200, reply.body
    assert [r["data"]["tick"] for r in reply.body] == [1, 2, 3]  # three entries, three runs
    assert time.monotonic() - started < 5


async def test_an_iteration_waits_for_its_time(tmp_path: Path) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=0.8)).isoformat()
    root = write(tmp_path, {"response.yaml": LOOP_AT.format(limit=1, at=f'["{soon}", "{soon}"]')})
    started = time.monotonic()
    reply = await run_agent(root, {})
    assert reply.status == 200, reply.body
    assert [r["data"]["tick"] for r in reply.body] == [1]  # `while` ends it after one
    assert time.monotonic() - started >= 0.5


@pytest.mark.parametrize(("loop", "message"), [
    ("at: ['not-a-date']", "invalid date/time 'not-a-date'"),
    ("at: ['25:00']", "invalid time of day '25:00'"),
    ("every: 1s\n  at: ['10:00']", "mutually exclusive"),
])
def test_bad_schedules_are_validation_errors(tmp_path: Path, loop: str, message: str) -> None:
    body = f"actionId: response\nloop:\n  {loop}\napiResponse:\n  response: 1\n"
    root = write(tmp_path, {"response.yaml": body})
    with pytest.raises(SpecErrors) as info:
        load_project(root)
    assert message in str(info.value)


def test_time_of_day_is_its_next_occurrence() -> None:
    now = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
    assert next_fire_time("13:30", now) == datetime(2026, 3, 15, 13, 30, tzinfo=UTC).timestamp()
    assert next_fire_time("08:00:05", now) == datetime(2026, 3, 16, 8, 0, 5, tzinfo=UTC).timestamp()


async def test_exec_output_is_text_and_a_result_object(tmp_path: Path) -> None:
    root = write(tmp_path, {"hello.yaml": """\
        actionId: hello
        exec:
          command: echo
          args: ["hello world"]
        """, "response.yaml": """\
        actionId: response
        requires: [hello]
        apiResponse:
          response:
            text: "{{ get('hello') }}"
            stdout: "{{ output('hello').stdout }}"
            code: "{{ output('hello').exitCode }}"
            ok: get('hello').success
            said: "said {{ get('hello') }}"
        """})
    reply = await run_agent(root, {})
    assert reply.status == 200, reply.body
    assert reply.body["data"] == {"text": "hello world", "stdout": "hello world\n", "code": 0,
                                      "ok": True, "said": "said hello world"}


async def test_child_processes_never_see_the_api_token(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDEPS_API_AUTH_TOKEN", "tok-never-in-children")
    root = write(tmp_path, {"response.yaml": """\
        actionId: response
        exec:
          command: "printf '%s' \\"${KDEPS_API_AUTH_TOKEN:-unset}\\""
        """})
    reply = await run_agent(root, {})
    assert reply.body["data"] == "unset"
