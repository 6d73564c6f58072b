"""A strict fake of the Gemini Generative Language API (v1beta and v1).

Paths: `POST /{v1beta|v1}/models/{model}:generateContent` and `:streamGenerateContent` (SSE with
`?alt=sse`, a JSON array without it). Anything else is 404 NOT_FOUND. Auth: `x-goog-api-key` header
or `?key=`; none → 403 PERMISSION_DENIED, a wrong key → 400 INVALID_ARGUMENT with reason
API_KEY_INVALID (as the real API answers). Body checks: unknown fields anywhere we know the shape
("Invalid JSON payload received. Unknown name …"), roles other than user/model, empty parts, bad
inline image data, OBJECT schemas with empty `properties`, schema keywords outside Gemini's subset.

Script answers with :meth:`GeminiFake.reply`, :meth:`GeminiFake.blocked`, or push raw replies.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from typing import Any, Self

from tests.fakes.base import FakeServer, Recorded, Reply, json_reply, sse, stream_reply

KEY = "AIza-fake-gemini-key"
_PATH = re.compile(r"^/(v1beta|v1)/models/([^/:]+):(generateContent|streamGenerateContent)$")
_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_TOP = {
    "contents",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "safetySettings",
    "safety_settings",
    "generationConfig",
    "generation_config",
    "cachedContent",
    "cached_content",
}
_GEN = {
    "temperature",
    "topP",
    "topK",
    "candidateCount",
    "maxOutputTokens",
    "stopSequences",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseLogprobs",
    "logprobs",
    "responseModalities",
    "thinkingConfig",
    "mediaResolution",
}
_PART = {
    "text",
    "inlineData",
    "inline_data",
    "functionCall",
    "function_call",
    "functionResponse",
    "function_response",
    "fileData",
    "file_data",
    "thought",
    "thoughtSignature",
    "thought_signature",
}
_SCHEMA = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "minimum",
    "maximum",
}
_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}


def error_body(status: int, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}
    if details is not None:
        err["details"] = details
    return {"error": err}


def rate_limited(seconds: str = "12s", per_day: bool = False) -> Reply:
    """A 429 like Gemini's: QuotaFailure + RetryInfo in the body, no Retry-After header."""
    quota = (
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
        if per_day
        else "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    )
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": quota,
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": seconds},
    ]
    return json_reply(error_body(429, "You exceeded your current quota.", details), 429)


def response(
    text: str = "",
    calls: Sequence[tuple[str, dict[str, Any]]] = (),
    *,
    usage: tuple[int, int] = (8, 5),
    finish: str = "STOP",
    model: str = "gemini-1.5-pro-002",
    signature: str | None = None,
) -> dict[str, Any]:
    """A GenerateContentResponse with one candidate."""
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    for i, (name, args) in enumerate(calls):
        part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
        if signature and i == 0:
            part["thoughtSignature"] = signature
        parts.append(part)
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
        "usageMetadata": {
            "promptTokenCount": usage[0],
            "candidatesTokenCount": usage[1],
            "totalTokenCount": usage[0] + usage[1],
        },
        "modelVersion": model,
        "responseId": "resp_fake",
    }


def chunks(resp: dict[str, Any], pieces: int = 3) -> list[dict[str, Any]]:
    """The stream of `resp`: text split over chunks, calls and finishReason/usage on the last one."""
    cand = resp["candidates"][0]
    parts = cand["content"]["parts"]
    text = "".join(p.get("text", "") for p in parts)
    others = [p for p in parts if "text" not in p]
    size = max(1, -(-len(text) // pieces))
    bits = [text[i : i + size] for i in range(0, len(text), size)]
    out = [
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": b}]}, "index": 0}],
            "usageMetadata": {"promptTokenCount": resp["usageMetadata"]["promptTokenCount"]},
            "modelVersion": resp["modelVersion"],
        }
        for b in bits
    ]
    out.append(
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": others or [{"text": ""}]},
                    "finishReason": cand["finishReason"],
                    "index": 0,
                }
            ],
            "usageMetadata": resp["usageMetadata"],
            "modelVersion": resp["modelVersion"],
        }
    )
    return out


def _bad(message: str) -> Reply:
    return json_reply(error_body(400, message), 400)


def _unknown(name: str, where: str = "") -> Reply:
    at = f" at '{where}'" if where else ""
    return _bad(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')


class GeminiFake(FakeServer):
    """Scriptable Gemini server; `key` is the only API key it accepts. `models`, when given, limits
    the models that exist (others → 404)."""

    def __init__(self, key: str = KEY, models: set[str] | None = None) -> None:
        super().__init__()
        self.key, self.models = key, models

    def error_body(self, status: int, message: str) -> Any:
        return error_body(status, message)

    def default(self, rec: Recorded) -> Reply:
        return self._answer(rec, response("ok"), 3, None)

    def reply(
        self,
        text: str = "",
        calls: Sequence[tuple[str, dict[str, Any]]] = (),
        *,
        usage: tuple[int, int] = (8, 5),
        finish: str = "STOP",
        pieces: int = 3,
        cut_after: int | None = None,
        signature: str | None = None,
    ) -> Self:
        """Queue one answer (JSON, or SSE chunks for `:streamGenerateContent`)."""
        resp = response(text, calls, usage=usage, finish=finish, signature=signature)
        return self.push(lambda rec: self._answer(rec, resp, pieces, cut_after))

    def blocked(self, reason: str = "SAFETY") -> Self:
        """Queue a prompt blocked by safety filters (no candidates, promptFeedback.blockReason)."""
        data = {
            "promptFeedback": {"blockReason": reason, "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
        }
        return self.push(lambda rec: self._answer(rec, data, 1, None))

    @staticmethod
    def _answer(rec: Recorded, resp: dict[str, Any], pieces: int, cut_after: int | None) -> Reply:
        if not rec.path.endswith(":streamGenerateContent"):
            return json_reply(resp)
        parts = chunks(resp, pieces) if resp.get("candidates") else [resp]
        if rec.query.get("alt") != "sse":
            return json_reply(parts)
        # Gemini frames each chunk as `data: …` + CRLF CRLF; the stream just ends (no sentinel).
        return stream_reply([f"data: {json.dumps(c)}\r\n\r\n" for c in parts], cut_after=cut_after)

    # -- strictness ---------------------------------------------------------------------------------
    def validate(self, rec: Recorded) -> Reply | None:
        match = _PATH.match(rec.path)
        if rec.method != "POST" or not match:
            return json_reply(error_body(404, f"Method not found: {rec.path}"), 404)
        key = rec.header("x-goog-api-key") or rec.query.get("key")
        if not key:
            return json_reply(
                error_body(
                    403,
                    "Method doesn't allow unregistered callers (callers without "
                    "established identity). Please use API Key or other form of API "
                    "consumer identity to call this API.",
                ),
                403,
            )
        if key != self.key:
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
            return json_reply(
                error_body(400, "API key not valid. Please pass a valid API key.", details), 400
            )
        model = match.group(2)
        if self.models is not None and model not in self.models:
            return json_reply(
                error_body(
                    404,
                    f"models/{model} is not found for API version {match.group(1)}, "
                    "or is not supported for generateContent.",
                ),
                404,
            )
        body = rec.json
        if not isinstance(body, dict):
            return _bad("Invalid JSON payload received.")
        for name in body:
            if name not in _TOP:
                return _unknown(name)
        return self._check_contents(body) or self._check_config(body) or self._check_tools(body)

    @staticmethod
    def _check_contents(body: dict[str, Any]) -> Reply | None:
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return _bad("* GenerateContentRequest.contents: contents is not specified")
        system = body.get("systemInstruction") or body.get("system_instruction")
        for i, content in enumerate([*contents, *([system] if system else [])]):
            if i < len(contents) and content.get("role") not in ("user", "model"):
                return _bad("Please use a valid role: user, model.")
            for name in content:
                if name not in ("role", "parts"):
                    return _unknown(name, f"contents[{i}]")
            parts = content.get("parts")
            if not isinstance(parts, list) or not parts:
                return _bad(
                    f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
                )
            for part in parts:
                for name in part:
                    if name not in _PART:
                        return _unknown(name, f"contents[{i}].parts[0]")
                inline = part.get("inlineData") or part.get("inline_data")
                if inline is not None:
                    mime = inline.get("mimeType") or inline.get("mime_type")
                    try:
                        base64.b64decode(inline.get("data", ""), validate=True)
                    except (binascii.Error, ValueError):
                        return _bad(
                            f"Invalid value at 'contents[{i}].parts[0].inline_data.data' (TYPE_BYTES), "
                            "Base64 decoding failed"
                        )
                    if not mime:
                        return _bad("Unable to submit request because it has an empty inlineData.mimeType.")
                response_part = part.get("functionResponse") or part.get("function_response")
                if response_part is not None and (
                    not response_part.get("name") or not isinstance(response_part.get("response"), dict)
                ):
                    return _bad("* functionResponse: name and response (an object) are required")
        return None

    def _check_config(self, body: dict[str, Any]) -> Reply | None:
        config = body.get("generationConfig") or body.get("generation_config") or {}
        for name in config:
            if name not in _GEN:
                return _unknown(name, "generation_config")
        schema = config.get("responseSchema")
        if schema is not None:
            if config.get("responseMimeType") != "application/json":
                return _bad("responseSchema needs responseMimeType application/json")
            return self._check_schema(schema, "generation_config.response_schema")
        return None

    def _check_tools(self, body: dict[str, Any]) -> Reply | None:
        for t, tool in enumerate(body.get("tools") or []):
            for d, decl in enumerate(
                tool.get("functionDeclarations") or tool.get("function_declarations") or []
            ):
                if not decl.get("name"):
                    return _bad(f"* tools[{t}].function_declarations[{d}].name: Name cannot be empty.")
                if "parameters" in decl:
                    bad = self._check_schema(
                        decl["parameters"], f"tools[{t}].function_declarations[{d}].parameters"
                    )
                    if bad:
                        return bad
        return None

    def _check_schema(self, schema: Any, where: str) -> Reply | None:
        if not isinstance(schema, dict):
            return _bad(f"Invalid value at '{where}'")
        for name in schema:
            if name not in _SCHEMA:
                return _unknown(name, where)
        kind = schema.get("type")
        if kind is not None and str(kind).upper() not in _TYPES:
            return _bad(
                f"Invalid value at '{where}.type' (type.googleapis.com/google.ai.generativelanguage."
                f'v1beta.Type), "{kind}"'
            )
        if str(kind).upper() == "OBJECT" and "properties" in schema and not schema["properties"]:
            return _bad(f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type")
        for name, sub in (schema.get("properties") or {}).items():
            if bad := self._check_schema(sub, f"{where}.properties[{name}].value"):
                return bad
        if "items" in schema and (bad := self._check_schema(schema["items"], f"{where}.items")):
            return bad
        for i, sub in enumerate(schema.get("anyOf") or []):
            if bad := self._check_schema(sub, f"{where}.any_of[{i}]"):
                return bad
        return None


__all__ = ["KEY", "GeminiFake", "chunks", "error_body", "rate_limited", "response", "sse"]
