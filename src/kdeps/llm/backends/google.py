"""Google Gemini through the Generative Language API v1beta (`models/{model}:generateContent`).

Translation rules worth knowing:

- Roles are `user` and `model`; system text goes to `systemInstruction`; tool results are
  `functionResponse` parts in a `user` turn (what the official SDK sends), with the output under
  `response.output` (or `response.error` for a failed tool).
- JSON Schemas (tool parameters, JSON mode) are reduced to Gemini's OpenAPI subset: upper-case
  types, `$ref`s inlined, `["x", "null"]` turned into `nullable`, unsupported keywords dropped. A tool
  without parameters gets no `parameters` (the API rejects an OBJECT with no properties).
- Gemini's function calls usually carry no id; we derive a stable one from the call (`gcall_…`) and
  never send such derived ids back. A thought signature that comes with a function call rides on
  that `ToolCall` and is sent back with it on the next turn (Gemini 3 requires them).
- Streams (`:streamGenerateContent?alt=sse`) have no terminator: a stream that ends after a chunk
  with a `finishReason` is complete, one that ends before is cut.
- Safety blocks (no candidates + `promptFeedback.blockReason`, or a blocked candidate without any
  content) become a BadRequestError that names the reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from kdeps.llm.backends.base import Backend, HttpCall, StreamParser, sampling, stream_json, tool_arguments
from kdeps.llm.catalog import BY_NAME
from kdeps.llm.errors import (
    AuthError,
    BadRequestError,
    InvalidResponseError,
    LLMError,
)
from kdeps.llm.types import ChatRequest, ChatResult, Endpoint, Message, StreamDelta, ToolCall, Usage

GENERATED_ID = "gcall_"
# ChatRequest field -> generationConfig key
_SAMPLING = {"temperature": "temperature", "top_p": "topP", "max_tokens": "maxOutputTokens",
             "presence_penalty": "presencePenalty", "frequency_penalty": "frequencyPenalty",
             "stop": "stopSequences"}
_BLOCKED = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY"}
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"} | {r: "content_filter" for r in _BLOCKED}
_SCHEMA_KEYS = {
    "type", "format", "title", "description", "nullable", "enum", "items", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
    "example", "anyOf", "propertyOrdering", "default", "minimum", "maximum",
}

def gemini_schema(schema: Any, defs: Mapping[str, Any] | None = None, depth: int = 0) -> dict[str, Any]:
    """A JSON Schema reduced to the OpenAPI subset Gemini accepts."""
    if not isinstance(schema, Mapping) or depth > 32:
        return {}
    if defs is None:
        defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        merged = {**(target or {}), **{k: v for k, v in schema.items() if k != "$ref"}}
        return gemini_schema(merged, defs, depth + 1)
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) < len(kind):
            out["nullable"] = True
        kind = kinds[0] if len(kinds) == 1 else None
        if len(kinds) > 1:
            out["anyOf"] = [{"type": k.upper()} for k in kinds]
    if isinstance(kind, str):
        out["type"] = kind.upper()
    if "const" in schema:  # Gemini enums are strings
        out["enum"] = [str(schema["const"])]
        out.setdefault("type", "STRING")
    for key, value in schema.items():
        if key not in _SCHEMA_KEYS or key == "type":
            continue
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {name: gemini_schema(sub, defs, depth + 1) for name, sub in value.items()}
        elif key == "items":
            out[key] = gemini_schema(value, defs, depth + 1)
        elif key == "anyOf" and isinstance(value, list):
            subs = [s for s in value if not (isinstance(s, Mapping) and s.get("type") == "null")]
            if len(subs) < len(value):
                out["nullable"] = True
            if len(subs) == 1:
                out.update(gemini_schema(subs[0], defs, depth + 1))
            else:
                out[key] = [gemini_schema(s, defs, depth + 1) for s in subs]
        elif key == "enum" and isinstance(value, list):
            out[key] = [str(v) for v in value if v is not None]
            out.setdefault("type", "STRING")
        elif key == "nullable":
            out[key] = out.get(key) is True or value is True
        else:
            out[key] = value
    if out.get("type") == "OBJECT" and "properties" in out and not out["properties"]:
        del out["properties"]
    return out


def call_id(index: int, name: str, args: Any) -> str:
    """A stable id for a Gemini function call that came without one."""
    digest = hashlib.sha1(f"{index}:{name}:{json.dumps(args, sort_keys=True)}".encode()).hexdigest()
    return GENERATED_ID + digest[:16]


def _model_url(base: str, model: str, method: str) -> str:
    base = base.rstrip("/")
    if not re.search(r"/v1(beta\d*|alpha)?$", base):
        base += "/v1beta"
    path = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
    return f"{base}/{path}:{method}"


def _tool_response(msg: Message) -> dict[str, Any]:
    try:
        value: Any = json.loads(msg.content)
    except ValueError:
        value = msg.content
    return {"error": value} if msg.is_error else {"output": value}


def build_contents(request: ChatRequest) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, wire contents) for a request."""
    system = [request.system] if request.system else []
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for msg in request.messages:
        if msg.role == "system":
            if msg.content:
                system.append(msg.content)
            continue
        parts: list[dict[str, Any]] = []
        if msg.role == "tool":
            name = msg.name or names.get(msg.tool_call_id or "", "")
            response: dict[str, Any] = {"name": name, "response": _tool_response(msg)}
            if msg.tool_call_id and not msg.tool_call_id.startswith(GENERATED_ID):
                response["id"] = msg.tool_call_id
            parts.append({"functionResponse": response})
            prev = contents[-1] if contents else None
            if prev and prev["role"] == "user" and all("functionResponse" in p for p in prev["parts"]):
                prev["parts"] += parts
                continue
            contents.append({"role": "user", "parts": parts})
            continue
        parts += [{"inlineData": {"mimeType": img.mime, "data": base64.b64encode(img.data).decode("ascii")}}
                  for img in msg.images]
        if msg.content:
            parts.append({"text": msg.content})
        for call in msg.tool_calls:
            names[call.id] = call.name
            fc: dict[str, Any] = {"name": call.name, "args": call.arguments}
            if not call.id.startswith(GENERATED_ID):
                fc["id"] = call.id
            part: dict[str, Any] = {"functionCall": fc}
            if call.signature:
                part["thoughtSignature"] = call.signature
            parts.append(part)
        if parts:
            contents.append({"role": "model" if msg.role == "assistant" else "user", "parts": parts})
    return system, contents


def _usage(meta: Any) -> Usage:
    if not isinstance(meta, Mapping):
        return Usage()
    out = int(meta.get("candidatesTokenCount") or 0) + int(meta.get("thoughtsTokenCount") or 0)
    return Usage(int(meta.get("promptTokenCount") or 0), out)


def _blocked(backend: str, data: Mapping[str, Any]) -> LLMError | None:
    """An error when Gemini refused the prompt outright (no candidates)."""
    feedback = data.get("promptFeedback")
    if isinstance(feedback, Mapping) and feedback.get("blockReason") and not data.get("candidates"):
        reason = feedback["blockReason"]
        return BadRequestError(backend, f"Gemini blocked the prompt (blockReason {reason}); "
                                        "rephrase it or adjust safetySettings")
    return None


class _Candidate:
    """Text, tool calls and finish reason pulled from one response chunk."""

    def __init__(self, data: Mapping[str, Any], first_index: int) -> None:
        self.calls: list[ToolCall] = []
        candidates = data.get("candidates") or []
        cand = candidates[0] if candidates and isinstance(candidates[0], Mapping) else {}
        self.raw_finish = str(cand.get("finishReason") or "")
        content = cand.get("content") or {}
        texts: list[str] = []
        for part in content.get("parts") or []:
            if not isinstance(part, Mapping):
                continue
            if "text" in part and not part.get("thought"):
                texts.append(str(part["text"]))
            fc = part.get("functionCall")
            if isinstance(fc, Mapping):
                name = str(fc.get("name", ""))
                args = tool_arguments("google", name, fc.get("args"))
                ident = str(fc.get("id") or call_id(first_index + len(self.calls), name, args))
                signature = str(part["thoughtSignature"]) if part.get("thoughtSignature") else None
                self.calls.append(ToolCall(ident, name, args, signature))
        self.text = "".join(texts)

    def safety_error(self, backend: str) -> LLMError | None:
        if self.raw_finish in _BLOCKED and not self.text and not self.calls:
            return BadRequestError(backend, f"Gemini stopped the answer (finishReason {self.raw_finish}); "
                                            "rephrase the prompt or adjust safetySettings")
        return None

    def finish(self, has_calls: bool) -> str:
        if has_calls and self.raw_finish in ("STOP", ""):
            return "tool_calls"
        return _FINISH.get(self.raw_finish, self.raw_finish.lower())


class GoogleBackend(Backend):
    """Gemini models through the Generative Language API."""

    declaration = BY_NAME["google"]

    def build(self, request: ChatRequest, endpoint: Endpoint, *, stream: bool = False) -> HttpCall:
        system, contents = build_contents(request)
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
        config = sampling(request, _SAMPLING)
        if request.json_mode:
            config["responseMimeType"] = "application/json"
            if request.json_schema and not request.tools:
                config["responseSchema"] = gemini_schema(request.json_schema)
        if config:
            body["generationConfig"] = config
        if request.tools:
            decls = []
            for tool in request.tools:
                decl: dict[str, Any] = {"name": tool.name, "description": tool.description}
                params = gemini_schema({"type": "object", **tool.parameters})
                if params.get("properties"):
                    decl["parameters"] = params
                decls.append(decl)
            body["tools"] = [{"functionDeclarations": decls}]
        headers: dict[str, str] = {}
        if endpoint.api_key:
            headers["x-goog-api-key"] = endpoint.api_key
        base = endpoint.base_url or self.default_base_url
        if stream:
            return HttpCall(_model_url(base, request.model, "streamGenerateContent"), headers, body,
                            {"alt": "sse"})
        return HttpCall(_model_url(base, request.model, "generateContent"), headers, body)

    def parse(self, data: Any) -> ChatResult:
        if not isinstance(data, Mapping):
            raise InvalidResponseError(self.name, "answer is not a JSON object")
        if (err := _blocked(self.name, data)) is not None:
            raise err
        if not isinstance(data.get("candidates"), list) or not data["candidates"]:
            raise InvalidResponseError(self.name, "answer has no candidates")
        cand = _Candidate(data, 0)
        if (err := cand.safety_error(self.name)) is not None:
            raise err
        return ChatResult(text=cand.text, tool_calls=cand.calls, finish_reason=cand.finish(bool(cand.calls)),
                          usage=_usage(data.get("usageMetadata")), model=str(data.get("modelVersion", "")),
                          backend=self.name)

    def stream_parser(self) -> StreamParser:
        return GoogleStreamParser(self)

    def error(self, status: int, data: Any, text: str, headers: Mapping[str, str]) -> LLMError:
        err = super().error(status, data, text, headers)
        body = data.get("error") if isinstance(data, Mapping) else None
        body = body if isinstance(body, Mapping) else {}
        reasons = {d.get("reason") for d in body.get("details") or [] if isinstance(d, Mapping)}
        if "API_KEY_INVALID" in reasons and not isinstance(err, AuthError):
            err = AuthError(self.name, err.message, status)
        if status == 429 and _per_day_quota(body):
            err.retryable = False  # a daily quota does not come back within any retry window
        return err

    def retry_after(self, headers: Mapping[str, str], data: Any) -> float | None:
        """`Retry-After` if present, else the `RetryInfo.retryDelay` ("12s", "0.5s") in the body."""
        found = super().retry_after(headers, data)
        if found is not None:
            return found
        body = data.get("error") if isinstance(data, Mapping) else None
        details = body.get("details") if isinstance(body, Mapping) else None
        for detail in details if isinstance(details, list) else []:
            if isinstance(detail, Mapping) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
                match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", str(detail.get("retryDelay", "")))
                if match:
                    return float(match.group(1))
        return None


def _per_day_quota(body: Mapping[str, Any]) -> bool:
    for detail in body.get("details") or []:
        if isinstance(detail, Mapping) and str(detail.get("@type", "")).endswith("QuotaFailure"):
            for violation in detail.get("violations") or []:
                if isinstance(violation, Mapping) and "PerDay" in str(violation.get("quotaId", "")):
                    return True
    return False


class GoogleStreamParser(StreamParser):
    """Each SSE `data:` is a full response fragment; there is no end marker."""

    def __init__(self, backend: GoogleBackend) -> None:
        self.backend = backend
        self.usage = Usage()
        self.finish_reason = ""
        self.calls = 0
        self.chunks = 0

    def feed(self, event: str | None, data: str) -> list[StreamDelta]:
        if not data.strip():
            return []
        obj = stream_json(self.backend.name, data)
        if "error" in obj:
            status = obj["error"].get("code") if isinstance(obj["error"], Mapping) else None
            status = status if isinstance(status, int) else 500
            raise self.backend.error(status, obj, data, {})
        if (err := _blocked(self.backend.name, obj)) is not None:
            raise err
        self.chunks += 1
        cand = _Candidate(obj, self.calls)
        if (err := cand.safety_error(self.backend.name)) is not None:
            raise err
        self.calls += len(cand.calls)
        if obj.get("usageMetadata"):
            self.usage = _usage(obj["usageMetadata"])
        if cand.raw_finish:
            self.finish_reason = cand.finish(self.calls > 0)
        if cand.text or cand.calls:
            return [StreamDelta(text=cand.text, tool_calls=cand.calls)]
        return []

    def finish(self) -> list[StreamDelta]:
        if not self.finish_reason:
            raise InvalidResponseError(self.backend.name,
                                       "stream ended before a finishReason (connection cut?)")
        return [StreamDelta(usage=self.usage, finish_reason=self.finish_reason)]
