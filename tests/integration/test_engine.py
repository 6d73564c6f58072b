"""The engine end to end on real YAML agents: order, concurrency, restrictions, preflight, items,
onError, and the non-LLM actions (exec, python, httpClient, apiResponse)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.agents import make_agent, run_agent
from tests.fakes.base import FakeServer, Recorded, Reply, error_reply, json_reply


class EchoServer(FakeServer):
    """A plain local HTTP API for httpClient tests: answers what the test queues, else echoes."""

    def default(self, rec: Recorded) -> Reply:
        return json_reply({"method": rec.method, "path": rec.path, "query": rec.query, "json": rec.json,
                           "auth": rec.header("authorization"), "key": rec.header("x-api-key")},
                          headers={"X-Served-By": "echo"})


@pytest.fixture
def echo():
    with EchoServer() as server:
        yield server


def response(deps: str, body: str | dict[str, str]) -> str:
    """The target resource: an apiResponse whose response is one expression or a map of them."""
    if isinstance(body, dict):
        lines = "".join(f"\n      {key}: {json.dumps(expr)}" for key, expr in body.items())
    else:
        lines = f" {json.dumps(body)}"
    return ("metadata:\n  actionId: response\n  requires: [" + deps + "]\n"
            "run:\n  apiResponse:\n    success: true\n    response:" + lines + "\n")


async def test_dependencies_run_first_and_outputs_flow(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {
        "a": """\
            metadata: {actionId: a}
            run:
              exec: {command: "echo first"}
            """,
        "b": """\
            metadata: {actionId: b, requires: [a]}
            run:
              exec: {command: "echo '{{ get('a') }} then second'"}
            """,
        "response": response("b", {"chain": "get('b')"}),
    })
    res = await run_agent(root)
    assert res.status == 200
    assert res.body == {"success": True, "data": {"chain": "first then second"}}


async def test_independent_branches_overlap_in_time(tmp_path: Path) -> None:
    now = 'python3 -c "import time; print(time.time())"'
    stamp = f"{now}; sleep 0.4; {now}"
    root = make_agent(tmp_path, {
        "left": f"""\
            metadata: {{actionId: left}}
            run:
              exec: {{command: '{stamp}'}}
            """,
        "right": f"""\
            metadata: {{actionId: right}}
            run:
              exec: {{command: '{stamp}'}}
            """,
        "response": response("left, right", {"l": "get('left')", "r": "get('right')"}),
    })
    res = await run_agent(root)
    (l0, l1), (r0, r1) = ([float(x) for x in res.body["data"][k].split()] for k in ("l", "r"))
    assert max(l0, r0) < min(l1, r1), "the two branches did not run concurrently"


async def test_unreachable_resources_do_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    root = make_agent(tmp_path, {
        "stray": f"""\
            metadata: {{actionId: stray}}
            run:
              exec: {{command: "touch {marker}"}}
            """,
        "response": response("", "ok"),
    })
    assert (await run_agent(root)).status == 200
    assert not marker.exists()


async def test_preflight_failure_answers_configured_code(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {"response": """\
        metadata: {actionId: response}
        run:
          preflightCheck:
            validations:
              - get('q') != ''
            error: {code: 422, message: "q is required"}
          apiResponse: {success: true, response: ok}
        """})
    res = await run_agent(root, {})
    assert res.status == 422
    assert res.body["error"]["message"] == "q is required"
    assert (await run_agent(root, {"q": "x"})).status == 200


async def test_skip_condition_and_method_restriction(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {
        "skipped": """\
            metadata: {actionId: skipped}
            run:
              skipCondition: ["get('mode') == 'fast'"]
              exec: {command: "echo slow"}
            """,
        "postOnly": """\
            metadata: {actionId: postOnly}
            run:
              restrictToHttpMethods: [POST]
              exec: {command: "echo posted"}
            """,
        "response": response("skipped, postOnly", {"s": "get('skipped')", "p": "get('postOnly')"}),
    })
    res = await run_agent(root, {"mode": "fast"})
    assert res.body["data"] == {"s": None, "p": "posted"}
    res = await run_agent(root, {"mode": "full"}, method="GET")
    assert res.body["data"] == {"s": "slow", "p": None}


async def test_expr_blocks_memory_and_items(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {
        "loop": """\
            metadata: {actionId: loop}
            items: [apple, banana, cherry]
            run:
              exprBefore:
                - set('seen', default(get('seen', 'memory'), '') + item.current() + ',')
              exec:
                command: "echo {{ get('index') }}:{{ get('current') }}/{{ get('count') }}"
            """,
        "response": response("loop", {"outs": "get('loop')", "seen": "get('seen')",
                                      "all": "get('loop', 'itemvalues')"}),
    })
    res = await run_agent(root)
    body = res.body["data"]
    assert body["outs"] == ["0:apple/3", "1:banana/3", "2:cherry/3"]
    assert body["all"] == body["outs"]
    assert body["seen"] == "apple,banana,cherry,"


async def test_on_error_continue_uses_fallback_and_error_object(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {
        "flaky": """\
            metadata: {actionId: flaky}
            run:
              exec: {command: "echo boom >&2; exit 3"}
              onError:
                action: continue
                expr:
                  - set('why', error.message)
                fallback: {data: [], fromCache: false}
            """,
        "response": response("flaky", {"out": "get('flaky')", "why": "get('why')"}),
    })
    res = await run_agent(root)
    assert res.status == 200
    assert res.body["data"]["out"] == {"data": [], "fromCache": False}
    assert "exited with code 3" in res.body["data"]["why"] and "boom" in res.body["data"]["why"]


async def test_on_error_retry_then_success(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    root = make_agent(tmp_path, {
        "flaky": f"""\
            metadata: {{actionId: flaky}}
            run:
              exec:
                command: "echo x >> {counter}; test $(wc -l < {counter}) -ge 3 && echo done"
              onError: {{action: retry, maxRetries: 3, retryDelay: 10ms}}
            """,
        "response": response("flaky", "get('flaky')"),
    })
    res = await run_agent(root)
    assert res.body["data"] == "done"
    assert len(counter.read_text().split()) == 3


async def test_unhandled_failure_is_clean_json_error(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {
        "broken": """\
            metadata: {actionId: broken}
            run:
              exec: {command: "exit 7"}
            """,
        "response": response("broken", "get('broken')"),
    })
    res = await run_agent(root)
    assert res.status == 500
    assert res.body["success"] is False
    assert res.body["error"]["resource"] == "broken"
    assert "code 7" in res.body["error"]["message"]


async def test_exec_timeout_is_504_and_kills_the_command(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {
        "slow": """\
            metadata: {actionId: slow}
            run:
              exec: {command: "sleep 30", timeoutDuration: 300ms}
            """,
        "response": response("slow", "get('slow')"),
    })
    res = await run_agent(root)
    assert res.status == 504
    assert "timed out after 0.3s" in res.body["error"]["message"]


async def test_exec_accessors_and_env(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {
        "cmd": """\
            metadata: {actionId: cmd}
            run:
              exec:
                command: 'echo "$GREETING {{ get(''who'') }}"; echo warn >&2'
                env: {GREETING: hello}
            """,
        "response": response("cmd", {"out": "get('cmd')", "err": "exec.stderr('cmd')",
                                     "code": "exec.exitCode('cmd')"}),
    })
    res = await run_agent(root, {"who": "world"})
    assert res.body["data"] == {"out": "hello world", "err": "warn\n", "code": 0}


async def test_python_json_output_and_literal_values(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {
        "py": """\
            metadata: {actionId: py}
            run:
              python:
                script: |
                  import json
                  data = {{ get('payload') }}
                  print(json.dumps({"n": len(data["items"]), "flag": data["flag"], "none": data["none"]}))
            """,
        "response": response("py", "get('py')"),
    })
    res = await run_agent(root, {"payload": {"items": [1, 2, 3], "flag": True, "none": None}})
    assert res.body["data"] == {"n": 3, "flag": True, "none": None}


async def test_python_timeout(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {
        "py": """\
            metadata: {actionId: py}
            run:
              python:
                script: "import time; time.sleep(30)"
                timeoutDuration: 300ms
            """,
        "response": response("py", "get('py')"),
    })
    res = await run_agent(root)
    assert res.status == 504


async def test_http_client_get_post_auth_and_headers(tmp_path: Path, echo: EchoServer) -> None:
    root = make_agent(tmp_path, {
        "fetch": f"""\
            metadata: {{actionId: fetch}}
            run:
              httpClient:
                method: POST
                url: "{echo.url}/items/{{{{ get('id') }}}}"
                data: {{name: "{{{{ get('name') }}}}"}}
                auth: {{type: bearer, token: "{{{{ get('token') }}}}"}}
            """,
        "response": response("fetch", {"body": "get('fetch')",
                                       "server": "http.responseHeader('fetch', 'x-served-by')",
                                       "status": "http.statusCode('fetch')"}),
    })
    res = await run_agent(root, {"id": "42", "name": "Ada", "token": "t0k"})
    body = res.body["data"]
    assert body["body"]["path"] == "/items/42"
    assert body["body"]["json"] == {"name": "Ada"}
    assert body["body"]["auth"] == "Bearer t0k"
    assert body["server"] == "echo"
    assert body["status"] == 200


async def test_http_client_retries_on_5xx(tmp_path: Path, echo: EchoServer) -> None:
    echo.push(error_reply(503, {"error": "busy"}), error_reply(500, {"error": "oops"}))
    root = make_agent(tmp_path, {
        "fetch": f"""\
            metadata: {{actionId: fetch}}
            run:
              httpClient:
                url: "{echo.url}/data"
                retry: {{maxAttempts: 3, backoff: 10ms, maxBackoff: 20ms}}
            """,
        "response": response("fetch", "get('fetch').path"),
    })
    res = await run_agent(root)
    assert res.body["data"] == "/data"
    assert len(echo.requests) == 3


async def test_http_client_honours_retry_after_within_the_deadline(
        tmp_path: Path, echo: EchoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from kdeps.actions import http_client

    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(http_client, "_sleep", record)
    echo.push(error_reply(429, {"error": "slow down"}, {"Retry-After": "3"}),
              error_reply(503, {"error": "later"}, {"Retry-After": "600"}))
    root = make_agent(tmp_path, {
        "fetch": f"""\
            metadata: {{actionId: fetch}}
            run:
              timeoutDuration: 60s
              httpClient:
                url: "{echo.url}/data"
                retry: {{maxAttempts: 5, backoff: 10ms, maxBackoff: 10s}}
            """,
        "response": response("fetch", "get('fetch').statusCode"),
    })
    res = await run_agent(root)
    # The server's 3 s is honoured over the 10 ms backoff; its 600 s would end after the resource's
    # deadline, so the 503 is the answer at once.
    assert waits == [3.0]
    assert res.body["data"] == 503
    assert len(echo.requests) == 2


async def test_api_response_status_headers_and_meta(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {"response": """\
        metadata: {actionId: response}
        run:
          apiResponse:
            success: get('ok') == 'yes'
            response: {echo: get('q')}
            meta:
              headers:
                X-Request-Id: info('requestId')
                Cache-Control: "max-age=60"
        """})
    res = await run_agent(root, {"q": "hi", "ok": "yes"})
    assert res.status == 200 and res.body == {"success": True, "data": {"echo": "hi"}}
    assert res.headers["Cache-Control"] == "max-age=60"
    assert len(res.headers["X-Request-Id"]) == 32
    res = await run_agent(root, {"q": "hi", "ok": "no"})
    assert res.body["success"] is False


async def test_seed_troubleshooting_snippets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_agent(tmp_path, {
        "check": """\
            metadata: {actionId: check}
            run:
              expr:
                - set('hasKey', get('OPENAI_API_KEY', 'env') != nil)
                - set('keyLength', len(default(get('OPENAI_API_KEY', 'env'), '')))
            """,
        "response": response("check", {"has": "get('hasKey')", "n": "get('keyLength')"}),
    })
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert (await run_agent(root)).body["data"] == {"has": False, "n": 0}
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    assert (await run_agent(root)).body["data"] == {"has": True, "n": 11}


async def test_session_values_persist_in_request_state(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {"response": """\
        metadata: {actionId: response}
        run:
          exprBefore:
            - set('visits', default(get('visits', 'session'), 0) + 1, 'session')
          apiResponse:
            response:
              visits: get('visits', 'session')
        """})
    res = await run_agent(root)
    assert res.body["data"] == {"visits": 1}
    assert res.session_changed is True
    assert json.dumps(res.body)
