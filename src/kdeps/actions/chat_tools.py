"""The `tools:` of a chat resource: compiled once to JSON Schema ToolSpecs, and executed by running
the resource each tool's `script` names."""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from dataclasses import dataclass
from typing import Any

from kdeps.llm.types import Message, ToolCall, ToolSpec

# Reserved by the tool definition itself; everything else on a parameter is JSON Schema (enum, items, ...).
_NOT_SCHEMA = {"required"}


@dataclass(slots=True, frozen=True)
class CompiledTools:
    specs: list[ToolSpec]
    scripts: dict[str, str]  # tool name -> actionId of the resource implementing it
    params: dict[str, frozenset[str]]  # tool name -> its declared parameter names


_cache: dict[int, tuple[weakref.ref[Any] | Any, CompiledTools]] = {}


def _dump(value: Any) -> dict[str, Any]:
    if hasattr(value, "model_dump"):
        dumped: dict[str, Any] = value.model_dump(exclude_none=True)
        return dumped
    return {k: v for k, v in dict(value).items() if v is not None}


def _param_schema(param: Any) -> tuple[dict[str, Any], bool]:
    data = _dump(param)
    required = bool(data.get("required", False))
    schema = {k: v for k, v in data.items() if k not in _NOT_SCHEMA}
    schema.setdefault("type", "string")
    if schema["type"] == "array":
        schema.setdefault("items", {"type": "string"})
    return schema, required


def compile_tools(config: Any) -> CompiledTools:
    """The ToolSpecs of `config.tools`, compiled once per config object."""
    key = id(config)
    hit = _cache.get(key)
    if hit is not None:
        ref, compiled = hit
        owner = ref() if isinstance(ref, weakref.ref) else ref
        if owner is config:
            return compiled
    specs: list[ToolSpec] = []
    scripts: dict[str, str] = {}
    params: dict[str, frozenset[str]] = {}
    for tool in config.tools or []:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for name, param in (tool.parameters or {}).items():
            properties[name], is_required = _param_schema(param)
            if is_required:
                required.append(name)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        description = (tool.description or "").strip()
        specs.append(ToolSpec(name=tool.name, description=description, parameters=schema))
        scripts[tool.name] = tool.script or tool.name
        params[tool.name] = frozenset(properties)
    compiled = CompiledTools(specs, scripts, params)
    holder: Any
    try:
        holder = weakref.ref(config, lambda _r, k=key: _cache.pop(k, None))  # type: ignore[misc]
    except TypeError:
        holder = config
    _cache[key] = (holder, compiled)
    return compiled


def encode_result(value: Any) -> str:
    """A value as the text a model receives (tool results, non-string prompts)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


async def run_calls(ctx: Any, tools: CompiledTools, calls: list[ToolCall],
                    log: logging.Logger) -> tuple[list[Message], list[dict[str, Any]]]:
    """Run one turn's tool calls concurrently; the tool messages to send back and a record of each."""

    async def one(call: ToolCall) -> tuple[Message, dict[str, Any]]:
        script = tools.scripts.get(call.name)
        error = False
        if script is None:
            known = ", ".join(tools.scripts) or "none"
            content, error = f"error: unknown tool '{call.name}' (available: {known})", True
        else:
            # Only declared parameters reach the tool: the model's extra keys would otherwise shadow
            # request values of the same name in get().
            declared = tools.params.get(call.name, frozenset())
            given = call.arguments if isinstance(call.arguments, dict) else {}
            arguments = {k: v for k, v in given.items() if k in declared}
            try:
                content = encode_result(await ctx.run_tool(script, arguments))
            except Exception as exc:  # a failing tool is reported to the model, which may recover
                log.warning("tool %s (resource %s) failed: %s", call.name, script, exc)
                content, error = f"error: tool '{call.name}' failed: {exc}", True
        message = Message(role="tool", content=content, tool_call_id=call.id, name=call.name, is_error=error)
        record = {"id": call.id, "name": call.name, "arguments": call.arguments, "result": content,
                  "is_error": error}
        return message, record

    done = await asyncio.gather(*(one(call) for call in calls))
    return [m for m, _ in done], [r for _, r in done]
