"""docs/reference.md, generated from the JSON Schema: every key of every block with its type,
default, description and an example. `kdeps schema --markdown > docs/reference.md` rewrites it."""

from __future__ import annotations

import json
from typing import Any

from kdeps.spec.schema import json_schema

INTRO = """\
# YAML reference

Every key kdeps reads, block by block, generated from the schema (`kdeps schema`). Do not edit by
hand: run `kdeps schema --markdown > docs/reference.md`. Keys are camelCase; where a block accepts
another spelling (the seed-era or current layout), the schema lists both.

A file starts with the top-level block of its kind: [Workflow](#workflow) for `workflow.yaml`;
[Resource](#resource) (seed-era `metadata:`/`run:` layout) or [FlatResource](#flatresource)
(current flat layout) for `resources/*.yaml`.
"""

_FIRST = ("Workflow", "Resource", "FlatResource")


def render() -> str:
    definitions: dict[str, Any] = json_schema(None)["definitions"]
    order = [*_FIRST, *sorted(n for n in definitions if n not in _FIRST)]
    parts = [INTRO]
    for name in order:
        parts.append(_block(name, definitions[name]))
    return "\n".join(parts)


def _block(name: str, schema: dict[str, Any]) -> str:
    out = [f"## {name}", ""]
    if schema.get("description"):
        out += [_cell(schema["description"]), ""]
    props: dict[str, Any] = schema.get("properties") or {}
    if not props:
        return "\n".join([*out, "(free-form mapping)", ""])
    required = set(schema.get("required") or ())
    out += ["| key | type | default | description | example |", "|---|---|---|---|---|"]
    for key, prop in props.items():
        label = f"`{key}`" + (" (required)" if key in required else "")
        out.append(f"| {label} | {_type(prop)} | {_default(prop)} | {_cell(_description(prop))} "
                   f"| {_example(key, prop)} |")
    return "\n".join([*out, ""])


def _description(prop: dict[str, Any]) -> str:
    if prop.get("description"):
        return str(prop["description"])
    for option in prop.get("anyOf") or ():
        if isinstance(option, dict) and option.get("description"):
            return str(option["description"])
    return ""


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        target = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{target}](#{target.lower()})"
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    options = prop.get("anyOf") or prop.get("oneOf")
    if options:
        kinds = [part for o in options if o.get("type") != "null" for part in _type(o).split(" or ")]
        return " or ".join(dict.fromkeys(k for k in kinds if k))
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type(prop.get('items') or {})}"
    if kind == "object":
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"map of {_type(extra)}"
        return "mapping"
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind if k != "null")
    if kind == "string" and prop.get("pattern", "").startswith("^\\s*(("):
        return "duration"
    return str(kind or "any")


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop or prop["default"] in (None, [], {}):
        return ""
    return f"`{json.dumps(prop['default'])}`"


def _example(key: str, prop: dict[str, Any]) -> str:
    if prop.get("examples"):
        return f"`{key}: {json.dumps(prop['examples'][0])}`"
    if "const" in prop:
        return f"`{key}: {prop['const']}`"
    if prop.get("default") not in (None, [], {}, ""):
        value = prop["default"]
        return f"`{key}: {json.dumps(value) if isinstance(value, str) else _yaml(value)}`"
    kind = _type(prop)
    if "duration" in kind:
        return f"`{key}: 30s`"
    if kind.startswith("`"):
        return f"`{key}: {kind.split('`')[1]}`"
    if kind.startswith("["):
        return f"`{key}:` (a mapping)"
    if kind.startswith("list"):
        return f"`{key}: [...]`"
    return {"string": f"`{key}: \"...\"`", "integer": f"`{key}: 1`", "number": f"`{key}: 0.5`",
            "boolean": f"`{key}: true`"}.get(kind.split(" or ")[0], f"`{key}: ...`")


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")
