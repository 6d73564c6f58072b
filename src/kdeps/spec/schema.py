"""JSON Schema (draft-07) of workflow and resource files, for editors such as yaml-language-server."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel
from pydantic.json_schema import models_json_schema

from kdeps.spec.resources import FlatResource, InlineAction, Resource
from kdeps.spec.workflow import Workflow

DRAFT = "http://json-schema.org/draft-07/schema#"
_REF = "#/definitions/{model}"


def json_schema(kind: Literal["workflow", "resource"] | None = None) -> dict[str, Any]:
    """The schema of one kind of file, or (kind=None) one that picks Workflow or Resource by `kind:`."""
    _, top = models_json_schema(
        [(Workflow, "validation"), (Resource, "validation"), (FlatResource, "validation"),
         (InlineAction, "validation")],
        ref_template=_REF,
    )
    definitions = top.get("$defs", {})
    _add_alias_keys(definitions)
    schema: dict[str, Any] = {"$schema": DRAFT}
    if kind == "workflow":
        schema.update(definitions.pop("Workflow"))
    elif kind == "resource":
        schema.update({
            "title": "Resource",
            "type": "object",
            "description": "A resource document in the seed-era (metadata/run) or current (flat) layout.",
            "anyOf": [{"$ref": _REF.format(model="Resource")}, {"$ref": _REF.format(model="FlatResource")}],
        })
    else:
        schema.update(
            {
                "title": "KDeps workflow or resource",
                "description": "A workflow.yaml (kind: Workflow) or a resource document (kind: Resource, the "
                "default in resources/*.yaml).",
                "if": {"properties": {"kind": {"const": "Workflow"}}, "required": ["kind"]},
                "then": {"$ref": _REF.format(model="Workflow")},
                "else": {"anyOf": [{"$ref": _REF.format(model="Resource")},
                                   {"$ref": _REF.format(model="FlatResource")}]},
            }
        )
    schema["definitions"] = definitions
    return schema


def _models() -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    stack: list[type[BaseModel]] = [Workflow, Resource, FlatResource, InlineAction]
    while stack:
        model = stack.pop()
        if model.__name__ in found:
            continue
        found[model.__name__] = model
        stack.extend(model.__subclasses__())
        for field in model.model_fields.values():
            stack.extend(_nested(field.annotation))
    return found


def _nested(tp: Any) -> list[type[BaseModel]]:
    import typing

    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for arg in typing.get_args(tp) for m in _nested(arg)]


def _add_alias_keys(definitions: dict[str, Any]) -> None:
    """Other accepted spellings of a key (`timeout` for `timeoutDuration`) appear in the schema too."""
    for name, model in _models().items():
        props = definitions.get(name, {}).get("properties")
        if not props:
            continue
        for field in model.model_fields.values():
            if isinstance(field.validation_alias, AliasChoices):
                choices = [str(c) for c in field.validation_alias.choices]
                primary = next((c for c in choices if c in props), None)
                for choice in choices:
                    if primary is not None and choice not in props:
                        props[choice] = props[primary]
