"""What each route of a workflow reads and answers, as an OpenAPI 3.1 document (`/openapi.json`).

A route's inputs come from the resources that run for it: their validation rules when present
(types, limits, enums), else the request keys their expressions read (`get('q')`, `input('q')`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kdeps.engine.request import GENERIC_UPLOAD_NAMES
from kdeps.engine.validation import field_rules
from kdeps.errors import ExprError
from kdeps.expr import compile_template
from kdeps.expr.parser import Node, parse, walk
from kdeps.server.config import ServerSettings
from kdeps.spec.actions import Chat
from kdeps.spec.graph import reachable_order
from kdeps.spec.plan import ResourcePlan
from kdeps.spec.resources import FieldRule

# get()/input() hints that name a request input; any other hint (env, session, item...) does not
_INPUT_HINTS = frozenset({"param", "query", "body", "data"})
_FILE_HINTS = frozenset({"file", "filepath", "filetype"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORMATS = {"email": "email", "url": "uri", "uuid": "uuid", "date": "date"}
_PARAM = re.compile(r"^:([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(slots=True)
class InputField:
    """One request input a route's resources read."""

    name: str
    schema: dict[str, Any] = field(default_factory=dict)  # JSON Schema of the value
    required: bool = False


@dataclass(slots=True)
class RouteDoc:
    """One route and method, with what the workflow reads from it."""

    path: str
    method: str
    inputs: list[InputField]
    path_params: list[str]
    uploads: list[str]  # form field names of files the workflow reads
    streams: bool  # a chat resource on this route streams (SSE when the client asks)
    resources: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "method": self.method, "pathParams": self.path_params,
                "inputs": [{"name": f.name, "schema": f.schema, "required": f.required} for f in self.inputs],
                "uploads": self.uploads, "streams": self.streams, "resources": self.resources}


def describe_routes(project: Any, settings: ServerSettings) -> list[RouteDoc]:
    """Every configured route and method with its inputs, in declaration order."""
    resources: dict[str, ResourcePlan] = project.resources
    target = project.workflow.metadata.target_action_id
    order = reachable_order({a: list(r.requires) for a, r in resources.items()}, target)
    docs = []
    for route in settings.routes:
        for method in route.methods:
            plans = [resources[a] for a in order if _applies(resources[a], route.path, method)]
            docs.append(_route_doc(route.path, method, plans, set(resources)))
    return docs


def _applies(plan: ResourcePlan, path: str, method: str) -> bool:
    return (not plan.methods or method in plan.methods) and (not plan.routes or path in plan.routes)


def _route_doc(path: str, method: str, plans: list[ResourcePlan], action_ids: set[str]) -> RouteDoc:
    params = [m.group(1) for s in path.strip("/").split("/") if (m := _PARAM.match(s))]
    fields: dict[str, InputField] = {}
    for plan in plans:  # validation rules first: they carry types
        rules = plan.validation
        if rules is None:
            continue
        for name, rule in field_rules(rules):
            fields.setdefault(name, InputField(name)).schema.update(_schema(rule))
        for name in rules.required:
            fields.setdefault(name, InputField(name)).required = True
    read, uploads, assigned = _reads(plans)
    for name in read:
        if name not in action_ids and name not in assigned and name not in params and name not in uploads:
            fields.setdefault(name, InputField(name))
    for name in uploads:
        fields.pop(name, None)
    return RouteDoc(path, method, list(fields.values()), params, uploads,
                    any(chat.stream for plan in plans for chat in plan.chats()), [p.action_id for p in plans])


def _schema(rule: FieldRule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rule.type in _FORMATS:
        out.update(type="string", format=_FORMATS[rule.type])
    elif rule.type:
        out["type"] = rule.type
    pairs = {"minLength": rule.min_length, "maxLength": rule.max_length, "pattern": rule.pattern,
             "minItems": rule.min_items, "maxItems": rule.max_items, "enum": rule.enum,
             "minimum": rule.minimum if rule.minimum is not None else rule.min,
             "maximum": rule.maximum if rule.maximum is not None else rule.max}
    out.update({k: v for k, v in pairs.items() if v is not None})
    if rule.message:
        out["description"] = rule.message
    return out


def _reads(plans: list[ResourcePlan]) -> tuple[list[str], list[str], set[str]]:
    """Request keys the resources' expressions read, file fields they read, and keys they set."""
    read: list[str] = []
    uploads: list[str] = []
    assigned: set[str] = set()
    for plan in plans:
        for text, is_file in _texts(plan):
            for node in _calls(text):
                name, args = node.args[0], node.args[1]
                key = args[0].args[0] if args and args[0].kind == "const" else None
                if name == "file" or (name == "get" and _hint(args) in _FILE_HINTS):
                    uploads.append(key if isinstance(key, str) and key not in ("*",) else "file")
                    continue
                if not isinstance(key, str) or "." in key or name not in ("get", "input"):
                    if name == "set" and isinstance(key, str):
                        assigned.add(key)
                    continue
                hint = _hint(args)
                if is_file or key in GENERIC_UPLOAD_NAMES:
                    uploads.append(key)
                elif len(args) == 1 or hint in _INPUT_HINTS or (name == "get" and hint is None):
                    read.append(key)
    return list(dict.fromkeys(read)), list(dict.fromkeys(uploads)), assigned


def _hint(args: list[Node]) -> str | None:
    if len(args) > 1 and args[1].kind == "const" and isinstance(args[1].args[0], str):
        return str(args[1].args[0])
    return None


def _texts(plan: ResourcePlan) -> Iterator[tuple[str, bool]]:
    """Every authored string the engine evaluates for this resource; True for a chat's `files`."""
    for source, _program in plan.skip:
        yield source, False
    if plan.check is not None:
        for source, _program in plan.check.conditions:
            yield source, False
    if plan.validation is not None:
        for rule in plan.validation.custom_rules:
            yield rule.expr, False
    for step in (*plan.before, *plan.after):
        if step.source:
            yield step.source, False
    if isinstance(plan.items, str):
        yield plan.items, False
    for action in plan.actions():
        files = action.config.files if isinstance(action.config, Chat) else []
        for text in _strings(action.config.model_dump()):
            yield text, text in files


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _calls(text: str) -> Iterator[Node]:
    """Call nodes of the expressions in `text` (a template, or a bare expression); text that is
    neither yields nothing."""
    sources: list[str] = []
    if "{{" in text:
        try:
            sources = [p.source for p in compile_template(text).parts if not isinstance(p, str)]
        except ExprError:
            return
    elif "(" in text:
        sources = [text.strip()]
    for source in sources:
        try:
            root = parse(source)
        except ExprError:
            continue
        yield from (n for n in walk(root) if n.kind == "call" and isinstance(n.args[0], str))


# -- the OpenAPI document ---------------------------------------------------------------------------
_ERROR = {"$ref": "#/components/schemas/Error"}


def _error_response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or _ERROR}}}


def openapi_document(project: Any, settings: ServerSettings, *, openai: bool = False,
                     auth: bool = False) -> dict[str, Any]:
    """The workflow's API as an OpenAPI 3.1 document."""
    meta = project.workflow.metadata
    paths: dict[str, dict[str, Any]] = {}
    for doc in describe_routes(project, settings):
        paths.setdefault(_openapi_path(doc.path), {})[doc.method.lower()] = _operation(doc, auth)
    if openai:
        paths.update(_openai_paths(auth))
    out: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": str(meta.name or "kdeps agent"), "version": str(meta.version or "0.0.0"),
                 **({"description": meta.description} if meta.description else {})},
        "paths": paths,
        "components": {"schemas": _SCHEMAS},
    }
    if auth:
        out["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        out["security"] = [{"bearer": []}]
    return out


def _openapi_path(path: str) -> str:
    parts = []
    for segment in path.strip("/").split("/"):
        param = _PARAM.match(segment)
        parts.append("{" + param.group(1) + "}" if param else "{rest}" if segment == "*" else segment)
    return "/" + "/".join(p for p in parts if p)


def _operation(doc: RouteDoc, auth: bool) -> dict[str, Any]:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", doc.path).strip("_") or "root"
    op: dict[str, Any] = {"operationId": f"{doc.method.lower()}_{slug}",
                          "summary": f"Runs {', '.join(doc.resources) or 'the workflow'}"}
    params: list[dict[str, Any]] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                                    for p in doc.path_params]
    if "*" in doc.path.split("/"):
        params.append({"name": "rest", "in": "path", "required": True, "schema": {"type": "string"}})
    properties = {f.name: f.schema for f in doc.inputs}
    required = [f.name for f in doc.inputs if f.required]
    if doc.method in _BODY_METHODS:
        body: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            body["required"] = required
        content: dict[str, Any] = {"application/json": {"schema": body}}
        if doc.uploads:
            form = {**properties, **{name: {"type": "string", "contentEncoding": "binary"}
                                     for name in doc.uploads}}
            content["multipart/form-data"] = {"schema": {**body, "properties": form}}
        op["requestBody"] = {"content": content, "required": bool(required)}
    else:
        params += [{"name": f.name, "in": "query", "required": f.required, "schema": f.schema}
                   for f in doc.inputs]
    if params:
        op["parameters"] = params
    ok: dict[str, Any] = {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}
    if doc.streams:
        ok["text/event-stream"] = {"schema": {"type": "string", "description": (
            "Sent when the request has `Accept: text/event-stream`: `delta` events "
            "({resource, text}), then one `result` (the JSON body) or `error` event.")}}
    responses: dict[str, Any] = {
        "200": {"description": "The target resource's answer", "content": ok},
        "400": _error_response("A preflight check failed, or the body is malformed"),
        "413": _error_response("The request body is over the size limit"),
        "422": _error_response("Input validation failed", {"$ref": "#/components/schemas/ValidationError"}),
        "500": _error_response("A resource failed"),
        "503": _error_response("Busy, draining, or the session store is unavailable"),
    }
    if auth:
        responses["401"] = _error_response("Missing or invalid bearer token")
    op["responses"] = dict(sorted(responses.items()))
    return op


def _openai_paths(auth: bool) -> dict[str, Any]:
    unauthorised = {"401": _error_response("Missing or invalid bearer token")} if auth else {}
    obj = {"type": "object"}
    return {
        "/v1/chat/completions": {"post": {
            "operationId": "openai_chat_completions",
            "summary": "Runs the workflow as an OpenAI chat completion (stream: true for SSE chunks)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["messages"],
                "properties": {"model": {"type": "string"}, "stream": {"type": "boolean"},
                               "messages": {"type": "array", "items": obj}}}}}},
            "responses": {"200": {"description": "A chat.completion object",
                                  "content": {"application/json": {"schema": obj},
                                              "text/event-stream": {"schema": {"type": "string"}}}},
                          "400": _error_response("Invalid request"), **unauthorised}}},
        "/v1/models": {"get": {
            "operationId": "openai_models", "summary": "The workflow, listed as a model",
            "responses": {"200": {"description": "A model list",
                                  "content": {"application/json": {"schema": obj}}}, **unauthorised}}},
    }


_SCHEMAS: dict[str, Any] = {
    "Envelope": {
        "type": "object",
        "description": "The default answer; a target with apiResponse answers its own shape.",
        "properties": {"success": {"type": "boolean"}, "data": {},
                       "meta": {"type": "object", "properties": {
                           "model": {"type": "string"}, "backend": {"type": "string"},
                           "warnings": {"type": "array", "items": {"type": "string"}}}}},
    },
    "Error": {
        "type": "object", "required": ["success", "error"],
        "properties": {"success": {"const": False}, "error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "resource": {"type": "string"}, "resourceId": {"type": "string"}}},
                       "meta": {"$ref": "#/components/schemas/RequestMeta"}},
    },
    "RequestMeta": {
        "type": "object",
        "properties": {"requestID": {"type": "string"}, "timestamp": {"type": "string"},
                       "path": {"type": "string"}, "method": {"type": "string"}}},
    "ValidationError": {
        "type": "object", "required": ["success", "error"],
        "properties": {"success": {"const": False}, "error": {
            "type": "object",
            "properties": {"code": {"const": "VALIDATION_ERROR"}, "message": {"type": "string"},
                           "resourceId": {"type": "string"},
                           "details": {"type": "object", "properties": {"errors": {"type": "array", "items": {
                               "type": "object", "properties": {"field": {"type": "string"},
                                                                "type": {"type": "string"},
                                                                "message": {"type": "string"}}}}}}}},
                       "meta": {"$ref": "#/components/schemas/RequestMeta"}},
    },
}
