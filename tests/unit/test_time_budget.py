"""tests/conftest.py's time budget: a test not marked slow that runs over it is listed, or failed when
KDEPS_TEST_TIME_LIMIT is set; marked tests and set-up time are not counted."""

from __future__ import annotations

import pytest

import tests.conftest as budget

SUITE = """\
import time

import pytest


@pytest.fixture
def slow_setup():
    time.sleep(0.15)


def test_quick(slow_setup):
    pass


def test_over():
    time.sleep(0.15)


@pytest.mark.slow
def test_marked():
    time.sleep(0.15)
"""


@pytest.fixture(autouse=True)
def _bare(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # only pytest's own plugins: starts fast


def _run(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(test_budget=SUITE)
    pytester.makeini("[pytest]\nmarkers =\n    slow: long\n")
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", plugins=[budget])


def _listed(result: pytest.RunResult) -> list[str]:
    text = result.stdout.str()
    assert "not marked slow" in text, text
    rows = text.split("not marked slow", 1)[1].split("short test summary", 1)[0]
    return [line.split()[-1] for line in rows.splitlines() if "::" in line]


def test_by_default_an_unmarked_test_over_budget_is_listed_not_failed(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(budget.ENV, raising=False)
    monkeypatch.setattr(budget, "DEFAULT_LIMIT", 0.1)
    result = _run(pytester)
    result.assert_outcomes(passed=3)
    assert _listed(result) == ["test_budget.py::test_over"]
    result.stdout.fnmatch_lines(["*listed only; set KDEPS_TEST_TIME_LIMIT=<seconds> to fail them*"])


def test_with_the_variable_set_it_fails(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(budget.ENV, "0.1")
    result = _run(pytester)
    result.assert_outcomes(passed=2, failed=1)
    assert _listed(result) == ["test_budget.py::test_over"]
    result.stdout.fnmatch_lines(["*took 0.1*s, over the 0.1s budget*mark it @pytest.mark.slow*"])


def test_zero_turns_it_off_and_a_bad_value_is_a_usage_error(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(budget.ENV, "0")
    monkeypatch.setattr(budget, "DEFAULT_LIMIT", 0.1)
    off = _run(pytester)
    off.assert_outcomes(passed=3)
    assert "not marked slow" not in off.stdout.str()
    monkeypatch.setenv(budget.ENV, "two")
    bad = _run(pytester)
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*KDEPS_TEST_TIME_LIMIT must be a number of seconds, not 'two'*"])
