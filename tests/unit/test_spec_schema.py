"""`kdeps schema` output: a draft-07 JSON Schema that editors can use and that agrees with the loader."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdeps.spec import BACKENDS
from kdeps.spec.actions import Chat
from kdeps.spec.resources import Resource
from kdeps.spec.schema import json_schema
from kdeps.spec.workflow import Workflow

DATA = Path(__file__).resolve().parents[1] / "data" / "spec"
DRAFT7_KEYWORDS = {
    "$schema",
    "$ref",
    "$id",
    "title",
    "description",
    "default",
    "examples",
    "type",
    "properties",
    "additionalProperties",
    "required",
    "items",
    "anyOf",
    "oneOf",
    "allOf",
    "enum",
    "const",
    "if",
    "then",
    "else",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "definitions",
    "format",
    "propertyNames",
    "not",
}
JSON_TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}


def walk(node: Any, path: str = "#"):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key in ("properties", "definitions"):
                for name, sub in value.items():
                    yield from walk(sub, f"{path}/{key}/{name}")
            elif key in ("default", "examples", "enum", "const"):
                continue
            else:
                yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from walk(item, f"{path}/{i}")


def check(instance: Any, schema: dict, root: dict) -> list[str]:
    """A small validator for the draft-07 subset the schema uses; returns the problems found."""
    if "$ref" in schema:
        return check(instance, root["definitions"][schema["$ref"].rsplit("/", 1)[1]], root)
    problems: list[str] = []
    if "if" in schema:
        branch = "then" if not check(instance, schema["if"], root) else "else"
        problems += check(instance, schema[branch], root)
    if "anyOf" in schema and all(check(instance, s, root) for s in schema["anyOf"]):
        problems.append(f"{instance!r} matches no alternative")
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
        actual = kinds.get(type(instance)) or ("integer" if isinstance(instance, int) else "number")
        if not (actual in types or (actual == "integer" and "number" in types)):
            return [f"{instance!r} is not {types}"]
    if "enum" in schema and instance not in schema["enum"]:
        problems.append(f"{instance!r} not in enum")
    if "const" in schema and instance != schema["const"]:
        problems.append(f"{instance!r} != const")
    if "pattern" in schema and isinstance(instance, str) and not re.search(schema["pattern"], instance):
        problems.append(f"{instance!r} does not match {schema['pattern']}")
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        problems += [f"missing {k}" for k in schema.get("required", []) if k not in instance]
        for key, value in instance.items():
            if key in props:
                problems += check(value, props[key], root)
            elif schema.get("additionalProperties") is False:
                problems.append(f"unknown key {key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += check(value, schema["additionalProperties"], root)
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            problems += check(item, schema["items"], root)
    return problems


@pytest.fixture(scope="module")
def combined() -> dict:
    return json.loads(json.dumps(json_schema()))  # proves it is plain JSON


def test_structure_is_draft7(combined: dict) -> None:
    assert combined["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert combined["then"] == {"$ref": "#/definitions/Workflow"}
    assert combined["else"] == {
        "anyOf": [{"$ref": "#/definitions/Resource"}, {"$ref": "#/definitions/FlatResource"}]}
    for path, node in walk(combined):
        unknown = set(node) - DRAFT7_KEYWORDS
        # A node under "properties" is a schema; its own keys are keywords.
        assert not unknown, f"{path}: not draft-07 keywords: {unknown}"
        if "$ref" in node:
            name = node["$ref"].removeprefix("#/definitions/")
            assert name in combined["definitions"], f"{path}: dangling $ref {node['$ref']}"
        if "type" in node:
            types = node["type"] if isinstance(node["type"], list) else [node["type"]]
            assert set(types) <= JSON_TYPES, path
        if "pattern" in node:
            re.compile(node["pattern"])


def test_models_match_schema(combined: dict) -> None:
    defs = combined["definitions"]
    for model in (Chat, Resource, Workflow):
        d = defs[model.__name__]
        assert set(d["properties"]) == set(model.yaml_keys())
        assert d["additionalProperties"] is False and d["description"]
    chat = defs["Chat"]["properties"]
    assert "jsonResponseKeys" in chat and "json_response_keys" not in chat
    backend = chat["backend"]
    enum = next(s["enum"] for s in backend.get("anyOf", [backend]) if "enum" in s)
    assert enum == list(BACKENDS)
    assert chat["prompt"]["description"] and chat["timeoutDuration"]["anyOf"]
    assert "baseOS" in defs["AgentSettings"]["properties"]
    described = sum(1 for d in defs.values() if d.get("description"))
    assert described == len(defs)


@pytest.mark.parametrize("kind", ["workflow", "resource"])
def test_single_kind(kind: str) -> None:
    schema = json_schema(kind)  # type: ignore[arg-type]
    assert schema["title"].lower() == kind and schema["type"] == "object"
    assert "if" not in schema and "definitions" in schema


def all_documents() -> list[tuple[str, Any]]:
    docs = []
    for path in sorted(DATA.glob("**/*.y*ml")):
        if "bad" in path.parts:
            continue
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if not isinstance(doc, dict):
                continue
            fragment = "kind" not in doc and (
                "settings" in doc or "targetActionId" in doc.get("metadata", {})
            )
            if doc and ("kind" in doc or "metadata" in doc) and not fragment:
                docs.append((f"{path.relative_to(DATA)}#{i}", doc))
    return docs


@pytest.mark.parametrize(("name", "doc"), all_documents(), ids=[n for n, _ in all_documents()])
def test_valid_documents_pass_the_schema(name: str, doc: Any, combined: dict) -> None:
    assert check(doc, combined, combined) == []


@pytest.mark.parametrize(
    "doc",
    [
        {"kind": "Resource", "metadata": {"actionId": "a"}, "run": {"chat": {"promt": "x"}}},
        {"kind": "Resource", "metadata": {"actionId": "a"}, "run": {"chat": {"backend": "opnai"}}},
        {"kind": "Resource", "metadata": {"actionId": "a"}, "run": {"chat": {"timeoutDuration": "soon"}}},
        {"kind": "Resource", "metadata": {}},
        {"kind": "Workflow", "metadata": {"name": "x"}},
        {"kind": "Workflow", "metadata": {"name": "x", "targetActionId": "y"}, "settings": {"hostIp": "x"}},
    ],
)
def test_invalid_documents_fail_the_schema(doc: Any, combined: dict) -> None:
    assert check(doc, combined, combined)


def test_with_jsonschema_if_installed(combined: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft7Validator.check_schema(combined)
    validator = jsonschema.Draft7Validator(combined)
    for _, doc in all_documents():
        assert not list(validator.iter_errors(doc))
