"""Fixtures the whole suite shares, and its time budget: a test not marked `slow` must finish its
call phase within 2 s.

Set-up and tear-down (servers, fixtures shared by a module) are not counted. The machines the suite
runs on differ and share their cores, so by default an over-budget test is only listed at the end of
the run; `KDEPS_TEST_TIME_LIMIT=<seconds>` makes it a failure (`0` turns the check off). See
CONTRIBUTING.md ("Tests and lint")."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator

import pytest

from tests.e2e.server_utils import redis_server

pytest_plugins = ["pytester"]  # tests/unit/test_time_budget.py runs this file's hooks on a small suite

DEFAULT_LIMIT = 2.0
ENV = "KDEPS_TEST_TIME_LIMIT"
LIMIT = pytest.StashKey[tuple[float, bool]]()
OVER = pytest.StashKey[list[tuple[str, float]]]()


def _limit() -> tuple[float, bool]:
    """(seconds, enforced): the env variable both sets the limit and makes it a failure."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT_LIMIT, False
    try:
        return float(raw), True
    except ValueError:
        raise pytest.UsageError(f"{ENV} must be a number of seconds, not {raw!r}") from None


def pytest_configure(config: pytest.Config) -> None:
    config.stash[LIMIT] = _limit()  # read once: a test's monkeypatched environment must not change it


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when != "call" or not report.passed or item.get_closest_marker("slow") is not None:
        return
    limit, enforced = item.config.stash[LIMIT]
    if limit <= 0 or report.duration <= limit:
        return
    item.config.stash.setdefault(OVER, []).append((item.nodeid, report.duration))
    if enforced:
        report.outcome = "failed"
        report.longrepr = (f"took {report.duration:.2f}s, over the {limit:g}s budget for a test not marked "
                           f"slow: make it faster or mark it @pytest.mark.slow ({ENV})")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    over = terminalreporter.config.stash.get(OVER, [])
    if not over:
        return
    limit, enforced = terminalreporter.config.stash[LIMIT]
    terminalreporter.section(f"over the {limit:g}s budget and not marked slow")
    for nodeid, seconds in sorted(over, key=lambda row: -row[1]):
        terminalreporter.write_line(f"{seconds:6.2f}s {nodeid}")
    if not enforced:
        terminalreporter.write_line(f"(listed only; set {ENV}=<seconds> to fail them)")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One redis-server for the run (tests use random session ids, so they do not meet)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
