"""`kdeps run --dev` as a subprocess: a broken edit keeps the last good version answering (no hung
request), the mistake is logged readably, and the fixed file is served. In-process: the same mistake
saved again is not logged again."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from kdeps.errors import KdepsError
from kdeps.server.devreload import DevApp
from tests.e2e.server_utils import copy_agent, running, wait_until


def agent_header(url: str) -> str | None:
    with urllib.request.urlopen(url + "/api/v1/echo", timeout=5) as r:  # a hang fails the test
        return r.headers.get("X-Agent")


def test_dev_keeps_serving_the_last_good_version(tmp_path: Path) -> None:
    agent = copy_agent("api", tmp_path)
    response_file = agent / "resources" / "response.yaml"
    good = response_file.read_text()
    with running(agent, "--dev") as server:
        assert agent_header(server.url) == "server-fixture"

        broken = good.replace("X-Agent: server-fixture", "X-Agent: broken\n\tbad: tab")
        response_file.write_text(broken)
        assert wait_until(lambda: "not reloaded" in server.stderr), server.stderr
        for _ in range(5):
            assert agent_header(server.url) == "server-fixture"
        assert server.stderr.count("not reloaded") == 1
        assert "response.yaml:" in server.stderr and "a tab character" in server.stderr
        assert "Traceback" not in server.stderr

        response_file.write_text(good.replace("X-Agent: server-fixture", "X-Agent: fixed"))
        assert wait_until(lambda: agent_header(server.url) == "fixed"), server.stderr
        assert "reloaded after a change to response.yaml" in server.stderr
        assert server.proc is not None and server.proc.poll() is None


def test_dev_starts_with_a_broken_agent_and_serves_it_once_fixed(tmp_path: Path) -> None:
    import json
    import urllib.error

    agent = copy_agent("api", tmp_path)
    response_file = agent / "resources" / "response.yaml"
    good = response_file.read_text()
    response_file.write_text(good.replace("  actionId: response", "  actionId: response\n  bogus: 1"))
    with running(agent, "--dev") as server:
        try:
            urllib.request.urlopen(server.url + "/api/v1/echo", timeout=5)
            raise AssertionError("expected 503")
        except urllib.error.HTTPError as err:
            assert err.code == 503
            body = json.loads(err.read())
        assert any("unknown key 'bogus'" in line for line in body["error"]["details"])
        assert server.stderr.count("unknown key 'bogus'") == 1
        response_file.write_text(good)
        assert wait_until(lambda: _header_or_none(server.url) == "server-fixture"), server.stderr


def _header_or_none(url: str) -> str | None:
    import urllib.error

    try:
        return agent_header(url)
    except urllib.error.HTTPError:
        return None


async def test_the_same_mistake_saved_again_is_logged_once(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    mistake = ["resources/response.yaml:3:1: a tab character"]

    def build() -> None:
        raise KdepsError(mistake[0])

    dev = DevApp(tmp_path, app=None, build=build)
    with caplog.at_level("ERROR", logger="kdeps.dev"):
        assert await dev.reload("response.yaml") is False
        assert await dev.reload("response.yaml") is False  # saved again, unchanged
        assert [r.getMessage().count("a tab character") for r in caplog.records] == [1]
        mistake[0] = "resources/response.yaml:4:1: another mistake"
        assert await dev.reload("response.yaml") is False
    assert len(caplog.records) == 2 and "another mistake" in caplog.records[1].getMessage()
