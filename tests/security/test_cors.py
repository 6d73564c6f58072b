"""CORS `*` never goes with credentials: any Origin gets a literal `*` and no Allow-Credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server_utils import KdepsServer, copy_agent, running
from tests.security.http import call


def _any_origin(workflow: dict[str, Any]) -> None:
    workflow["settings"]["apiServer"]["cors"]["allowOrigins"] = ["*"]
    workflow["settings"]["apiServer"]["cors"]["allowCredentials"] = True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KdepsServer]:
    agent = copy_agent("api", tmp_path_factory.mktemp("cors"), _any_origin)
    with running(agent) as srv:
        yield srv


def test_star_answers_a_literal_star_without_credentials(server: KdepsServer) -> None:
    status, headers, _ = call(server.url, path="/api/v1/echo?q=x", headers={"Origin": "https://evil.example"})
    assert status == 200
    assert headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in headers


def test_star_preflight_answers_a_literal_star_without_credentials(server: KdepsServer) -> None:
    status, headers, _ = call(server.url, "OPTIONS", "/api/v1/echo", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert status == 204
    assert headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in headers


def test_credentials_go_only_to_named_origins(server: KdepsServer, tmp_path: Path) -> None:
    _, star, _ = call(server.url, path="/api/v1/echo", headers={"Origin": "https://evil.example"})
    assert star.get("access-control-allow-origin") != "https://evil.example"  # never reflected
    agent = copy_agent("api", tmp_path)  # allowOrigins: [https://app.example], allowCredentials: true
    with running(agent) as srv:
        _, listed, _ = call(srv.url, path="/api/v1/echo", headers={"Origin": "https://app.example"})
        _, other, _ = call(srv.url, path="/api/v1/echo", headers={"Origin": "https://evil.example"})
    assert listed["access-control-allow-origin"] == "https://app.example"
    assert listed["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in other
