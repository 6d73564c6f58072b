"""/openapi.json: generated from the workflow, valid OpenAPI 3.1 for every example agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdeps.server.config import settings_from_project
from kdeps.server.openapi import describe_routes, openapi_document
from kdeps.spec import load_project
from tests.agents import make_agent

EXAMPLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "examples").iterdir()
                  if (p / "workflow.yaml").exists())
validate = pytest.importorskip("openapi_spec_validator", reason="openapi-spec-validator (test extra)"
                               ).validate


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize(("openai", "auth"), [(False, False), (True, True)])
def test_every_example_is_valid_openapi_3_1(example: Path, openai: bool, auth: bool) -> None:
    project = load_project(example)
    document = openapi_document(project, settings_from_project(project), openai=openai, auth=auth)
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert ("/v1/chat/completions" in document["paths"]) is openai
    assert ("security" in document) is auth


def test_inputs_take_their_types_from_validation_rules(tmp_path: Path) -> None:
    root = make_agent(tmp_path / "a", {"response": """\
        metadata:
          actionId: response
        run:
          validation:
            required: [email, count]
            properties:
              email: {type: email}
              count: {type: integer, minimum: 1, maximum: 5}
              mode: {type: string, enum: [fast, slow]}
          apiResponse:
            success: true
            response:
              echo: "{{ get('email') }} {{ get('extra') }} {{ get('FAKE', 'env') }}
                {{ get('seen', 'session') }}"
        """})
    workflow = (root / "workflow.yaml").read_text().replace("/api/v1/run", "/api/v1/items/:id")
    (root / "workflow.yaml").write_text(workflow)
    project = load_project(root)
    document = openapi_document(project, settings_from_project(project))
    validate(document)
    post = document["paths"]["/api/v1/items/{id}"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["email", "count"]
    assert schema["properties"] == {"email": {"type": "string", "format": "email"},
                                    "count": {"type": "integer", "minimum": 1, "maximum": 5},
                                    "mode": {"type": "string", "enum": ["fast", "slow"]},
                                    "extra": {}}  # read by an expression, no rule: any value
    assert post["parameters"] == [{"name": "id", "in": "path", "required": True,
                                   "schema": {"type": "string"}}]
    get = document["paths"]["/api/v1/items/{id}"]["get"]
    assert [p["name"] for p in get["parameters"] if p["in"] == "query"] == ["email", "count", "mode", "extra"]
    assert {"400", "422", "500"} <= set(post["responses"])


def test_a_vision_route_takes_a_file_and_a_streaming_route_says_so() -> None:
    root = Path(__file__).resolve().parents[1] / "browser" / "agents" / "vision"
    project = load_project(root)
    (doc,) = describe_routes(project, settings_from_project(project))
    assert doc.uploads == ["file"] and doc.streams and [f.name for f in doc.inputs] == ["q"]
    document = openapi_document(project, settings_from_project(project))
    validate(document)
    content = document["paths"]["/api/v1/describe"]["post"]["requestBody"]["content"]
    assert content["multipart/form-data"]["schema"]["properties"]["file"]["contentEncoding"] == "binary"
    assert "text/event-stream" in document["paths"]["/api/v1/describe"]["post"]["responses"]["200"]["content"]
