"""`kdeps run` as a subprocess on a free port, driven over HTTP like a user would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.server_utils import accepts, copy_agent, running, wait_until


def _api(workflow: dict[str, Any]) -> dict[str, Any]:
    return workflow["settings"]["apiServer"]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    agent = copy_agent("api", tmp_path_factory.mktemp("api"))
    with running(agent) as server:
        yield server


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def test_banner_lists_routes(api_server):
    out = api_server.stdout
    assert f"Starting API server on 127.0.0.1:{api_server.port}" in out
    assert "  POST /api/v1/visit" in out and "  GET /api/v1/items/:id" in out


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_each_method_and_query_over_body_precedence(api_server, http, method):
    async with http.request(method, api_server.url + "/api/v1/echo?q=from-query",
                            json={"q": "from-body", "name": "ann"}) as r:
        assert r.status == 200, await r.text()
        data = await r.json()
        assert r.headers["X-Agent"] == "server-fixture"
        assert r.headers["X-Request-Id"] == data["data"]["requestId"]
    resp = data["data"]
    assert data["success"] is True
    assert (resp["method"], resp["path"]) == (method, "/api/v1/echo")
    assert resp["q"] == "from-query"  # get() looks at query parameters before the body
    assert resp["qBody"] == "from-body"
    assert resp["name"] == "ann"
    assert resp["clientIp"] == "127.0.0.1"


async def test_path_params_and_curl_style_body(api_server, http):
    async with http.get(api_server.url + "/api/v1/items/42") as r:
        assert (await r.json())["data"]["id"] == "42"
    # curl -d '{"q": ...}' labels the JSON as a form; it still arrives as JSON
    async with http.post(api_server.url + "/api/v1/echo", data='{"q": "What is AI?"}',
                         headers={"Content-Type": "application/x-www-form-urlencoded"}) as r:
        assert (await r.json())["data"]["q"] == "What is AI?"


async def test_forwarded_for_from_trusted_proxy(api_server, http):
    async with http.get(api_server.url + "/api/v1/echo", headers={"X-Forwarded-For": "203.0.113.7"}) as r:
        assert (await r.json())["data"]["clientIp"] == "203.0.113.7"


async def test_routing_and_parse_errors_are_json(api_server, http):
    async with http.get(api_server.url + "/api/v1/missing") as r:
        body = await r.json()
        assert r.status == 404 and body["success"] is False and "/api/v1/missing" in body["error"]["message"]
    async with http.delete(api_server.url + "/api/v1/items/1") as r:
        assert r.status == 405 and "GET" in r.headers["Allow"]
        assert (await r.json())["success"] is False
    async with http.post(api_server.url + "/api/v1/echo", data="{not json",
                         headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400 and "malformed JSON" in (await r.json())["error"]["message"]


async def test_preflight_check_answers_its_configured_code(api_server, http):
    async with http.post(api_server.url + "/api/v1/check", json={}) as r:
        body = await r.json()
        assert r.status == 400 and body["success"] is False
        assert body["error"]["message"] == "name is required"
    async with http.post(api_server.url + "/api/v1/check", json={"name": "bo"}) as r:
        assert r.status == 200 and (await r.json())["data"]["name"] == "bo"


async def test_multipart_upload_reaches_python(api_server, http):
    form = aiohttp.FormData()
    form.add_field("document", b"hello upload", filename="note.txt", content_type="text/plain")
    async with http.post(api_server.url + "/api/v1/upload", data=form) as r:
        assert r.status == 200, await r.text()
        upload = (await r.json())["data"]["upload"]
    saved = Path(upload.pop("path"))
    assert upload == {"upper": "HELLO UPLOAD", "size": 12, "name": "note.txt"}
    assert not saved.exists() and not saved.parent.exists()  # the per-request upload dir is gone


async def test_cors_preflight_and_headers(api_server, http):
    url = api_server.url + "/api/v1/echo"
    pre = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type, authorization"}
    async with http.options(url, headers=pre) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert r.headers["Access-Control-Allow-Methods"] == "GET, POST"
        assert r.headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization"
        assert r.headers["Access-Control-Allow-Credentials"] == "true"
        assert r.headers["Access-Control-Max-Age"] == "3600"
    async with http.options(url, headers={**pre, "Access-Control-Request-Method": "DELETE"}) as r:
        assert r.status == 403
    async with http.options(url, headers={**pre, "Origin": "https://other.example"}) as r:
        assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
    async with http.post(url, json={}, headers={"Origin": "https://app.example"}) as r:
        assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert r.headers["Access-Control-Expose-Headers"] == "X-Request-Id"


async def test_access_log_is_json_without_secrets(api_server, http):
    async with http.get(api_server.url + "/api/v1/echo?api_key=sk-query-secret",
                        headers={"Authorization": "Bearer sk-header-secret"}) as r:
        request_id = r.headers["X-Request-Id"]
    assert await asyncio.to_thread(wait_until, lambda: request_id in api_server.stderr, 5)
    lines = [json.loads(line) for line in api_server.stderr.splitlines() if line.startswith("{")]
    entry = next(e for e in lines if e.get("requestId") == request_id)
    assert entry["status"] == 200 and entry["route"] == "/api/v1/echo" and entry["method"] == "GET"
    assert entry["durationMs"] >= 0
    assert "sk-query-secret" not in api_server.stderr and "sk-header-secret" not in api_server.stderr


# -- sessions -----------------------------------------------------------------------------------------

async def _visit(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, aiohttp.ClientResponse]:
    async with http.post(url + "/api/v1/visit", json={}, **kwargs) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["data"]["visits"], r


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
async def test_session_persists_across_requests(request, tmp_path, http, kind):
    """Each store through the real server; expiry is tested with a fake clock in
    tests/unit/test_session_stores.py (the server with its store in-process)."""
    session: dict[str, Any] = {"type": kind, "ttl": "10m", "cleanupInterval": "1m"}
    if kind == "redis":
        session["url"] = request.getfixturevalue("redis_url")
    agent = copy_agent("api", tmp_path, lambda wf: wf["settings"].__setitem__("session", session))
    # the shared fixture server already uses a memory store with a 10m ttl
    reuse = request.getfixturevalue("api_server") if kind == "memory" else None
    with contextlib.nullcontext(reuse) if reuse else running(agent) as server:
        first, r1 = await _visit(http, server.url)
        cookie = r1.headers["Set-Cookie"]
        assert "kdeps_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Max-Age=600;" in cookie  # the ttl
        sid = r1.headers["X-Session-Id"]
        second, _ = await _visit(http, server.url)  # cookie jar sends the cookie
        assert (first, second) == (1, 2)
        async with aiohttp.ClientSession() as bare:  # no cookies: the header carries the id
            third, _ = await _visit(bare, server.url, headers={"X-Session-Id": sid})
            assert third == 3
            fresh, _ = await _visit(bare, server.url)
            assert fresh == 1
    if kind == "sqlite":
        assert (agent / ".kdeps" / "sessions.db").exists()


async def test_sqlite_session_survives_restart(tmp_path, http):
    agent = copy_agent("api", tmp_path, lambda wf: wf["settings"].__setitem__(
        "session", {"type": "sqlite", "path": "state/s.db", "ttl": "1m"}))
    with running(agent) as server:
        assert (await _visit(http, server.url))[0] == 1
        port = server.port
    # a new client session: the old keep-alive connection died with the first server
    with running(agent, port=port) as server:
        async with aiohttp.ClientSession(cookie_jar=http.cookie_jar) as again:
            assert (await _visit(again, server.url))[0] == 2
    assert (agent / "state" / "s.db").exists()


# -- limits and auth ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def limited_server(tmp_path_factory):
    def patch(wf: dict[str, Any]) -> None:
        _api(wf).update({"maxBodySize": "2KB", "maxConcurrentRequests": 2,
                         "authToken": "{{ get('KDEPS_TEST_API_TOKEN', 'env') }}"})

    agent = copy_agent("api", tmp_path_factory.mktemp("limited"), patch)
    with running(agent, env={"KDEPS_TEST_API_TOKEN": "tok-123"}) as server:
        yield server


AUTH = {"Authorization": "Bearer tok-123"}


async def test_bearer_auth(limited_server, http):
    async with http.get(limited_server.url + "/api/v1/echo") as r:
        assert r.status == 401 and (await r.json())["success"] is False
    async with http.get(limited_server.url + "/api/v1/echo", headers={"Authorization": "Bearer nope"}) as r:
        assert r.status == 401
    async with http.get(limited_server.url + "/api/v1/echo", headers=AUTH) as r:
        assert r.status == 200
    assert "tok-123" not in limited_server.stderr + limited_server.stdout


async def test_body_cap_413_with_and_without_content_length(limited_server, http):
    async with http.post(limited_server.url + "/api/v1/echo", headers=AUTH, json={"x": "a" * 3000}) as r:
        assert r.status == 413 and (await r.json())["success"] is False

    async def chunks():
        for _ in range(10):
            yield b"b" * 500

    async with http.post(limited_server.url + "/api/v1/echo", headers=AUTH, data=chunks()) as r:
        assert r.status == 413


async def test_concurrency_cap_503(limited_server, http):
    url, agent = limited_server.url, limited_server.agent
    slow = [asyncio.create_task(http.get(url + "/api/v1/slow", headers=AUTH)) for _ in range(2)]
    try:
        assert await asyncio.to_thread(wait_until, lambda: len(list(agent.glob("started-*"))) == 2)
        async with http.get(limited_server.url + "/api/v1/echo", headers=AUTH) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "1"
    finally:
        (agent / "release").touch()
    for resp in await asyncio.gather(*slow):
        assert resp.status == 200
        resp.release()


def test_missing_auth_env_var_fails_at_startup(tmp_path):
    agent = copy_agent("api", tmp_path, lambda wf: _api(wf).__setitem__(
        "authToken", "{{ get('KDEPS_TEST_UNSET_TOKEN', 'env') }}"))
    with pytest.raises(RuntimeError, match="KDEPS_TEST_UNSET_TOKEN") as info, running(agent):
        pass
    assert "Traceback" not in str(info.value)


# -- lifecycle ----------------------------------------------------------------------------------------

async def test_graceful_shutdown_lets_in_flight_request_finish(tmp_path, http):
    agent = copy_agent("api", tmp_path)
    with running(agent) as server:
        pending = asyncio.create_task(http.get(server.url + "/api/v1/slow"))
        try:
            assert await asyncio.to_thread(wait_until, lambda: any(agent.glob("started-*")))
            server.terminate()
            # draining: new connections are refused while the request is still held
            assert await asyncio.to_thread(wait_until, lambda: not accepts(server.port))
            assert not pending.done()
        finally:
            (agent / "release").touch()
        resp = await pending
        assert resp.status == 200
        assert (await resp.json())["data"]["slow"] == "finished"
        assert await asyncio.to_thread(server.wait, 10) == 0
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(server.url + "/api/v1/echo"):
                pass


async def test_workers_share_sqlite_sessions(tmp_path, http):
    agent = copy_agent("api", tmp_path, lambda wf: wf["settings"].__setitem__(
        "session", {"type": "sqlite", "ttl": "1m"}))
    with running(agent, "--workers", "2") as server:
        counts = []
        for _ in range(6):
            # a new connection each time, so the kernel may hand it to either worker
            async with aiohttp.ClientSession(cookie_jar=http.cookie_jar) as one_shot:
                counts.append((await _visit(one_shot, server.url))[0])
        assert counts == [1, 2, 3, 4, 5, 6]


async def test_dev_mode_reloads_on_yaml_change(tmp_path, http):
    agent = copy_agent("api", tmp_path)
    with running(agent, "--dev") as server:
        async with http.get(server.url + "/api/v1/echo") as r:
            assert r.headers["X-Agent"] == "server-fixture"
        response_file = agent / "resources" / "response.yaml"
        text = response_file.read_text().replace("X-Agent: server-fixture", "X-Agent: reloaded")
        response_file.write_text(text)
        deadline = time.monotonic() + 15
        seen = None
        while time.monotonic() < deadline:
            try:
                async with http.get(server.url + "/api/v1/echo") as r:
                    seen = r.headers.get("X-Agent")
                if seen == "reloaded":
                    break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        assert seen == "reloaded"


# -- the KDeps quickstart agent against a fake Ollama ---------------------------------------------------

async def test_quickstart_agent_answers_through_fake_ollama(tmp_path, http):
    from tests.fakes.ollama import OllamaFake

    with OllamaFake() as fake:
        fake.say("AI is the study of making machines think.")
        agent = copy_agent("quickstart", tmp_path)
        llm = agent / "resources" / "llm.yaml"
        llm.write_text(llm.read_text().replace("    model: llama3.2:1b\n",
                                               f"    model: llama3.2:1b\n    baseUrl: {fake.url}\n"))
        with running(agent) as server:
            async with http.post(server.url + "/api/v1/chat", data='{"q": "What is AI?"}',
                                 headers={"Content-Type": "application/x-www-form-urlencoded"}) as r:
                assert r.status == 200, await r.text()
                body = await r.json()
            assert body["success"] is True
            assert body["data"]["data"] == "AI is the study of making machines think."
            assert body["data"]["query"] == "What is AI?"
            async with http.post(server.url + "/api/v1/chat", json={}) as r:
                assert r.status == 400
                assert (await r.json())["error"]["message"] == "Query parameter 'q' is required"
