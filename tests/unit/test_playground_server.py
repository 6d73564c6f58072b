"""The playground's paths in-process: who may load it, its security headers, the trace it asks for."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kdeps.engine import Engine
from kdeps.server.app import create_app
from kdeps.session import create_store
from kdeps.spec import load_project
from tests.agents import make_agent
from tests.asgi import call


@pytest.fixture
def project(tmp_path: Path) -> Any:
    root = make_agent(tmp_path / "a", {
        "first": """\
            metadata:
              actionId: first
            run:
              expr:
                - set('seen', get('q'))
            """,
        "response": """\
            metadata:
              actionId: response
              requires: [first]
            run:
              apiResponse:
                success: true
                response:
                  echo: "{{ get('q') }}"
            """})
    return load_project(root)


def app_for(project: Any, **kwargs: Any) -> Any:
    return create_app(project, Engine(project), session_store=create_store("memory"), **kwargs)


async def test_the_playground_is_off_unless_asked(project: Any) -> None:
    app = app_for(project)
    for path in ("/", "/docs", "/openapi.json", "/_kdeps/agent"):
        assert (await call(app, path))[0] == 404


async def test_the_page_carries_a_strict_content_security_policy(project: Any) -> None:
    app = app_for(project, ui=True)
    status, headers, body = await call(app, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "script-src 'self';" in csp and "default-src 'none'" in csp and "unsafe" not in csp
    # no inline code: every script is a file, no element has an on* handler
    assert re.findall(rb"<script[^>]*>", body) == [b'<script src="/_kdeps/static/playground.js" defer>']
    assert not re.search(rb"\son[a-z]+=", body)
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert (await call(app, "/_kdeps/static/playground.js"))[0] == 200
    assert (await call(app, "/_kdeps/static/../app.py"))[0] == 404
    assert (await call(app, "/_kdeps/swagger/swagger-ui-bundle.js"))[0] == 200
    assert (await call(app, "/_kdeps/swagger/index.html"))[0] == 404  # only the two assets /docs needs
    status, _, body = await call(app, "/_kdeps/agent")
    route = json.loads(body)["routes"][0]
    assert route["resources"] == ["first", "response"] and [i["name"] for i in route["inputs"]] == ["q"]


async def test_without_a_token_only_loopback_clients_and_host_names_get_it(
        project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KDEPS_API_AUTH_TOKEN", raising=False)
    app = app_for(project, ui=True)
    assert (await call(app, "/", headers={"host": "localhost:3000"}))[0] == 200
    assert (await call(app, "/", client="10.0.0.7"))[0] == 403
    # a page elsewhere whose DNS name now points at 127.0.0.1 (DNS rebinding)
    assert (await call(app, "/openapi.json", headers={"host": "evil.example:3000"}))[0] == 403


async def test_with_a_token_the_page_is_public_and_the_agent_description_needs_it(
        project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDEPS_API_AUTH_TOKEN", "s3cret-token")
    app = app_for(project, ui=True)
    status, _, body = await call(app, "/", client="10.0.0.7")
    assert status == 200 and b"s3cret" not in body
    assert (await call(app, "/openapi.json", client="10.0.0.7"))[0] == 401
    status, _, body = await call(app, "/_kdeps/agent", client="10.0.0.7",
                                 headers={"authorization": "Bearer s3cret-token"})
    assert status == 200 and json.loads(body)["auth"] is True and b"s3cret" not in body


async def test_the_trace_comes_back_only_when_the_page_asks(project: Any) -> None:
    app = app_for(project, ui=True)
    request = {"content-type": "application/json"}
    _, headers, _ = await call(app, "/api/v1/run", "POST", headers=request, body=b'{"q":"hi"}')
    assert "x-kdeps-trace" not in headers
    _, headers, body = await call(app, "/api/v1/run", "POST", headers={**request, "x-kdeps-trace": "1"},
                                  body=b'{"q":"hi"}')
    assert json.loads(body)["data"] == {"echo": "hi"}
    rows = json.loads(headers["x-kdeps-trace"])["resources"]
    assert [(r["resource"], r["status"]) for r in rows] == [("first", "ok"), ("response", "ok")]
    assert all(isinstance(r["durationMs"], float) for r in rows)
    # a server without the playground never adds it
    _, headers, _ = await call(app_for(project), "/api/v1/run", "POST",
                               headers={**request, "x-kdeps-trace": "1"}, body=b'{"q":"hi"}')
    assert "x-kdeps-trace" not in headers


async def test_new_session_clears_the_cookie_only_for_the_page(project: Any) -> None:
    app = app_for(project, ui=True)
    assert (await call(app, "/_kdeps/session/new", "POST"))[0] == 403  # a cross-site form cannot
    status, headers, _ = await call(app, "/_kdeps/session/new", "POST", headers={"x-kdeps-playground": "1"})
    assert status == 204 and headers["set-cookie"].startswith("kdeps_session=; Path=/; Max-Age=0")


async def test_a_workflow_route_on_slash_keeps_it_and_the_page_moves(tmp_path: Path) -> None:
    root = make_agent(tmp_path / "b", {"response": """\
        metadata:
          actionId: response
        run:
          apiResponse:
            success: true
            response: mine
        """})
    (root / "workflow.yaml").write_text((root / "workflow.yaml").read_text().replace("/api/v1/run", "/"))
    project = load_project(root)
    app = app_for(project, ui=True)
    status, _, body = await call(app, "/")
    assert status == 200 and json.loads(body)["data"] == "mine"
    status, headers, _ = await call(app, "/_kdeps/")
    assert status == 200 and headers["content-type"].startswith("text/html")


async def test_the_workflow_can_turn_it_on(tmp_path: Path) -> None:
    root = make_agent(tmp_path / "c", {"response": """\
        metadata:
          actionId: response
        run:
          apiResponse:
            success: true
            response: ok
        """})
    text = (root / "workflow.yaml").read_text().replace("  apiServer:\n", "  apiServer:\n    ui: true\n", 1)
    (root / "workflow.yaml").write_text(text)
    app = app_for(load_project(root))
    assert (await call(app, "/"))[0] == 200
