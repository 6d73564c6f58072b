"""Input validation (`run.validation` seed-era, `validations:` current) answers 422 with KDeps' body,
end to end through the engine, and `input`/`request`/`info()` reach the response."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agents import run_agent
from tests.compat.test_layouts import write

SEED = """\
apiVersion: kdeps.io/v1
kind: Resource
metadata:
  actionId: response
run:
  validation:
    required: [email]
    properties:
      email: {type: email}
      age: {type: integer, minimum: 18}
    customRules:
      - expr: input.age < 120
        message: too old
  apiResponse:
    response:
      hello: "Hi {{ input.email }} from {{ request.method }} on {{ info('name') }} v{{ info('version') }}"
"""

CURRENT = """\
actionId: response
validations:
  required: [email]
  rules:
    - field: email
      type: email
    - field: age
      type: integer
      minimum: 18
  expr:
    - input.age < 120
apiResponse:
  response:
    hello: "Hi {{ input.email }} from {{ request.method }} on {{ info('name') }} v{{ info('version') }}"
"""


@pytest.mark.parametrize("body", [SEED, CURRENT], ids=["seed-era", "current"])
async def test_validation_answers_422_and_objects_reach_the_response(tmp_path: Path, body: str) -> None:
    root = write(tmp_path, {"response.yaml": body})
    bad = await run_agent(root, {"email": "nope", "age": 12})
    assert bad.status == 422, bad.body
    assert bad.body["success"] is False and bad.body["error"]["code"] == "VALIDATION_ERROR"
    fields = {e["field"] for e in bad.body["error"]["details"]["errors"]}
    assert fields == {"email", "age"}
    old = await run_agent(root, {"email": "a@b.io", "age": 130})
    assert old.status == 422 and old.body["error"]["message"] == "Custom validation failed", old.body
    ok = await run_agent(root, {"email": "a@b.io", "age": 30})
    assert ok.status == 200, ok.body
    assert ok.body["data"]["hello"] == "Hi a@b.io from POST on compat v1.0.0"
