"""Every error a client meets has one shape, KDeps' envelope, whoever made it (the server's refusals,
the engine, a resource, a preflight check), plain or asked for as a stream:

    {"success": false, "error": {"code", "message", ...},
     "meta": {"requestID", "timestamp", "path", "method"}}
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.error import HTTPError

import pytest

from kdeps.errors import ExprError, InputValidationError, PreflightError, ResourceError
from kdeps.errors import HTTPError as RefusedError
from kdeps.llm.errors import RateLimitError
from tests.agents import make_agent
from tests.e2e.server_utils import KdepsServer, running
from tests.e2e.streaming import parse_sse

RESPONSE = """\
metadata:
  actionId: response
run:
  preflightCheck:
    validations:
      - get('q') != 'bad'
    error:
      code: 403
      message: q may not be bad
  apiResponse:
    success: true
    statusCode: 201
    headers:
      X-Doubled: "yes"
    response:
      q: get('q') * 2
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KdepsServer]:
    root = make_agent(tmp_path_factory.mktemp("envelope"), {"response": RESPONSE})
    with running(root) as served:
        yield served


def call(server: KdepsServer, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.url + path, data=data, method=method, headers={
        "Content-Type": "application/json", "X-Request-Id": "req-42", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers, answer.read()
    except HTTPError as err:
        return err.code, err.headers, json.loads(err.read())


@pytest.mark.parametrize(("method", "path", "body", "status", "code", "resource"), [
    ("POST", "/nowhere", None, 404, "NOT_FOUND", None),
    ("DELETE", "/api/v1/run", None, 405, "BAD_REQUEST", None),
    ("POST", "/api/v1/run", {"q": "bad"}, 403, "PREFLIGHT_FAILED", "response"),
    ("POST", "/api/v1/run", {"q": "abc"}, 500, "RESOURCE_FAILED", "response"),
])
@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
def test_every_failure_has_the_envelope(server: KdepsServer, method: str, path: str, body: Any, status: int,
                                        code: str, resource: str | None, accept: str) -> None:
    got, headers, answer = call(server, method, path, body, {"Accept": accept})
    assert got == status and headers["content-type"] == "application/json"
    assert answer["success"] is False
    assert answer["error"]["code"] == code and answer["error"]["message"]
    assert answer["error"].get("resourceId") == resource
    meta = answer["meta"]
    assert (meta["requestID"], meta["path"], meta["method"]) == ("req-42", path, method)
    assert meta["timestamp"].endswith("Z")


def test_preflight_message_is_the_workflows(server: KdepsServer) -> None:
    _, _, answer = call(server, "POST", "/api/v1/run", {"q": "bad"})
    assert answer["error"]["message"] == "q may not be bad"


def test_success_is_the_envelope_too(server: KdepsServer) -> None:
    status, _, raw = call(server, "POST", "/api/v1/run", {"q": 2})
    assert status == 201 and json.loads(raw)["data"] == {"q": 4}


def test_a_stream_without_deltas_is_one_result_event_with_the_workflows_head(server: KdepsServer) -> None:
    status, headers, raw = call(server, "POST", "/api/v1/run", {"q": 2}, {"Accept": "text/event-stream"})
    assert status == 201 and headers["x-doubled"] == "yes"
    assert headers["content-type"].startswith("text/event-stream")
    events = parse_sse(raw.decode())
    assert [name for name, _ in events] == ["result"] and events[0][1]["data"] == {"q": 4}


@pytest.mark.parametrize(("error", "status", "code"), [
    (RefusedError(413, "too big"), 413, "REQUEST_TOO_LARGE"),
    (RefusedError(503, "busy", {"retry-after": "1"}), 503, "SERVICE_UNAVAILABLE"),
    (ResourceError("r", "upstream down", 502), 502, "RESOURCE_FAILED"),
    (ResourceError("r", "too slow", 504), 504, "TIMEOUT"),
    (PreflightError("r", "no", 401), 401, "PREFLIGHT_FAILED"),
    (InputValidationError("r", [{"field": "a", "type": "required", "message": "a is required"}]), 422,
     "VALIDATION_ERROR"),
    (ExprError("unknown name x", "x + 1", 0), 500, "EXPRESSION_ERROR"),
    (RateLimitError("openai", "slow down", 429), 500, "INTERNAL_ERROR"),
])
def test_each_error_knows_its_status_and_code(error: Any, status: int, code: str) -> None:
    body = error.envelope({"requestID": "r1"})
    assert error.status == status
    assert body["success"] is False and body["error"]["code"] == code
    assert body["error"]["message"] == error.message and body["meta"] == {"requestID": "r1"}


def test_upstream_status_is_not_the_reply_status() -> None:
    error = RateLimitError("openai", "slow down", 429)
    assert error.upstream_status == 429 and error.status == 500  # the engine decides the reply (502)
    assert str(error) == "openai HTTP 429: slow down"

