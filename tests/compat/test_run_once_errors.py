"""`kdeps run --once` answers an error as the server does: the same JSON body on stdout, a one-line
summary on stderr, a non-zero exit, and never a Python traceback."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from urllib.error import HTTPError

from kdeps.engine.request import RequestData
from kdeps.engine.runner import failure
from kdeps.errors import InputValidationError
from tests.agents import cli, make_agent
from tests.e2e.server_utils import running

BROKEN_SKIP = """\
metadata:
  actionId: response
run:
  skipCondition:
    - get('q') > 1
  apiResponse:
    success: true
    response:
      q: get('q')
"""


def test_expression_error_is_the_servers_json_body(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {"response": BROKEN_SKIP})
    proc = cli("run", str(root), "--once", "--input", "q=abc")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    body = json.loads(proc.stdout)
    assert body["success"] is False and "string > int" in body["error"]["message"]
    assert "string > int" in proc.stderr and "HTTP 500" in proc.stderr

    with running(root) as server:
        request = urllib.request.Request(f"{server.url}/api/v1/run", data=b'{"q": "abc"}',
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError("the server answered 2xx")
        except HTTPError as err:
            assert err.code == 500
            served = json.loads(err.read())
            assert served["error"] == body["error"]
            assert served.keys() == body.keys() == {"success", "error", "meta"}


def test_unexpected_error_is_a_500_body_and_a_logged_summary(caplog) -> None:
    request = RequestData(request_id="r-1")
    response = failure(TypeError("boom"), request)
    assert response.status == 500
    assert response.body["error"] == {"code": "INTERNAL_ERROR", "message": "internal server error"}
    assert response.body["meta"]["requestID"] == "r-1"
    assert "TypeError: boom" in caplog.text and "r-1" in caplog.text


def test_validation_error_is_the_422_body() -> None:
    request = RequestData(request_id="r-2", path="/api/v1/run")
    problem = {"field": "email", "type": "required", "message": "field 'email' is required"}
    response = failure(InputValidationError("createUser", [problem]), request)
    assert response.status == 422
    error = response.body["error"]
    assert error == {"code": "VALIDATION_ERROR", "message": "Input validation failed",
                     "resource": "createUser", "resourceId": "createUser", "details": {"errors": [problem]}}
    assert response.body["meta"]["requestID"] == "r-2" and response.body["meta"]["path"] == "/api/v1/run"
