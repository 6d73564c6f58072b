"""JSON Schema (draft-07) of workflow and resource files, for editors such as yaml-language-server."""

from __future__ import annotations

from typing import Any, Literal

from pydantic.json_schema import models_json_schema

from kdeps.spec.models import Resource, Workflow

DRAFT = "http://json-schema.org/draft-07/schema#"
_REF = "#/definitions/{model}"


def json_schema(kind: Literal["workflow", "resource"] | None = None) -> dict[str, Any]:
    """The schema of one kind of file, or (kind=None) one that picks Workflow or Resource by `kind:`."""
    _, top = models_json_schema([(Workflow, "validation"), (Resource, "validation")], ref_template=_REF)
    definitions = top.get("$defs", {})
    schema: dict[str, Any] = {"$schema": DRAFT}
    if kind == "workflow":
        schema.update(definitions.pop("Workflow"))
    elif kind == "resource":
        schema.update(definitions.pop("Resource"))
    else:
        schema.update(
            {
                "title": "KDeps workflow or resource",
                "description": "A workflow.yaml (kind: Workflow) or a resource document (kind: Resource, the "
                "default in resources/*.yaml).",
                "if": {"properties": {"kind": {"const": "Workflow"}}, "required": ["kind"]},
                "then": {"$ref": _REF.format(model="Workflow")},
                "else": {"$ref": _REF.format(model="Resource")},
            }
        )
    schema["definitions"] = definitions
    return schema
