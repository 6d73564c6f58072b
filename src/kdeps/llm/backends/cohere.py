"""Cohere Chat API v2 (`POST /v2/chat`).

Translation rules worth knowing:

- The API rejects unknown fields (422), so only documented fields are sent: no OpenAI `strict` in
  tool definitions, `p` instead of `top_p`.
- JSON mode is `response_format: {type: json_object}` (plus `json_schema` when a schema is given).
  Cohere refuses `response_format` together with tools, so with tools it is left out and the JSON
  comes from the prompt instruction alone.
- An assistant turn that called tools carries its text as `tool_plan`; a tool result is a
  `role: tool` message. Cohere has no error flag for tool results: a failed tool's text is sent
  as `{"error": …}` JSON.
- 498 (invalid token) is an authentication error.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from kdeps.llm.backends.base import Backend, HttpCall, StreamParser, sampling, stream_json, tool_arguments
from kdeps.llm.catalog import BY_NAME
from kdeps.llm.errors import AuthError, InvalidResponseError, LLMError, UpstreamError
from kdeps.llm.types import ChatRequest, ChatResult, Endpoint, Message, StreamDelta, ToolCall, Usage

# ChatRequest field -> Cohere v2 body key
_SAMPLING = {"max_tokens": "max_tokens", "temperature": "temperature", "top_p": "p",
             "frequency_penalty": "frequency_penalty", "presence_penalty": "presence_penalty",
             "stop": "stop_sequences"}
_FINISH = {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls",
           "ERROR": "error", "TIMEOUT": "error"}


def _chat_url(base: str) -> str:
    base = base.rstrip("/")
    return base + ("/chat" if base.endswith("/v2") else "/v2/chat")


def _message(msg: Message) -> dict[str, Any] | None:
    if msg.role == "tool":
        content = json.dumps({"error": msg.content}) if msg.is_error else msg.content
        return {"role": "tool", "tool_call_id": msg.tool_call_id or "", "content": content}
    if msg.role == "assistant":
        if not msg.tool_calls:
            return {"role": "assistant", "content": msg.content} if msg.content else None
        calls = [{"id": c.id, "type": "function",
                  "function": {"name": c.name, "arguments": json.dumps(c.arguments)}} for c in msg.tool_calls]
        out: dict[str, Any] = {"role": "assistant", "tool_calls": calls}
        if msg.content:
            out["tool_plan"] = msg.content
        return out
    if msg.role == "user" and msg.images:
        parts: list[dict[str, Any]] = [{"type": "text", "text": msg.content}] if msg.content else []
        for img in msg.images:
            url = f"data:{img.mime};base64,{base64.b64encode(img.data).decode('ascii')}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        return {"role": "user", "content": parts}
    return {"role": msg.role, "content": msg.content}


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, Mapping):
        return Usage()
    for key in ("tokens", "billed_units"):
        counts = raw.get(key)
        if isinstance(counts, Mapping) and ("input_tokens" in counts or "output_tokens" in counts):
            return Usage(int(counts.get("input_tokens") or 0), int(counts.get("output_tokens") or 0))
    return Usage()


def _finish(reason: Any) -> str:
    return _FINISH.get(str(reason or ""), str(reason or "").lower())


class CohereBackend(Backend):
    """Cohere Command models through the v2 Chat API."""

    declaration = BY_NAME["cohere"]

    def build(self, request: ChatRequest, endpoint: Endpoint, *, stream: bool = False) -> HttpCall:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [m for m in map(_message, request.messages) if m is not None]
        body: dict[str, Any] = {"model": request.model, "messages": messages}
        body.update(sampling(request, _SAMPLING))
        if request.tools:
            body["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description,
                "parameters": {"type": "object", **t.parameters}}} for t in request.tools]
        elif request.json_mode:
            fmt: dict[str, Any] = {"type": "json_object"}
            if request.json_schema:
                fmt["json_schema"] = request.json_schema
            body["response_format"] = fmt
        if stream:
            body["stream"] = True
        headers: dict[str, str] = {}
        if endpoint.api_key:
            headers["authorization"] = f"Bearer {endpoint.api_key}"
        return HttpCall(_chat_url(endpoint.base_url or self.default_base_url), headers, body)

    def parse(self, data: Any) -> ChatResult:
        if not isinstance(data, Mapping) or not isinstance(data.get("message"), Mapping):
            raise InvalidResponseError(self.name, "answer has no 'message' object")
        msg = data["message"]
        content = msg.get("content")
        if isinstance(content, str):
            text = content
        else:
            text = "".join(str(p.get("text", "")) for p in content or []
                           if isinstance(p, Mapping) and p.get("type") == "text")
        calls = []
        for raw in msg.get("tool_calls") or []:
            fn = raw.get("function") or {}
            name = str(fn.get("name", ""))
            args = tool_arguments(self.name, name, fn.get("arguments"))
            calls.append(ToolCall(str(raw.get("id", "")), name, args))
        return ChatResult(text=text, tool_calls=calls, finish_reason=_finish(data.get("finish_reason")),
                          usage=_usage(data.get("usage")), model=str(data.get("model", "")),
                          backend=self.name)

    def stream_parser(self) -> StreamParser:
        return CohereStreamParser(self.name)

    def error(self, status: int, data: Any, text: str, headers: Mapping[str, str]) -> LLMError:
        err = super().error(status, data, text, headers)
        if status == 498:
            return AuthError(self.name, err.message, status)
        return err


class CohereStreamParser(StreamParser):
    """Cohere v2 stream events (by their `type`), ending with `message-end`."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.calls: dict[int, dict[str, str]] = {}
        self.ended = False

    def feed(self, event: str | None, data: str) -> list[StreamDelta]:
        if not data.strip():
            return []
        if data.strip() == "[DONE]":
            self.ended = True
            return []
        obj = stream_json(self.backend, data)
        kind = obj.get("type") or event
        delta: Mapping[str, Any] = obj["delta"] if isinstance(obj.get("delta"), Mapping) else {}
        message: Mapping[str, Any] = delta["message"] if isinstance(delta.get("message"), Mapping) else {}
        index = int(obj.get("index") or 0)
        if kind == "content-delta":
            content = message.get("content") or {}
            text = content.get("text") if isinstance(content, Mapping) else None
            return [StreamDelta(text=str(text))] if text else []
        if kind == "tool-call-start":
            call = message.get("tool_calls") or {}
            fn = call.get("function") or {}
            self.calls[index] = {"id": str(call.get("id", "")), "name": str(fn.get("name", "")),
                                 "arguments": str(fn.get("arguments") or "")}
        elif kind == "tool-call-delta":
            fn = (message.get("tool_calls") or {}).get("function") or {}
            if index in self.calls:
                self.calls[index]["arguments"] += str(fn.get("arguments") or "")
        elif kind == "tool-call-end":
            call = self.calls.pop(index, None)
            if call:
                args = tool_arguments(self.backend, call["name"], call["arguments"])
                return [StreamDelta(tool_calls=[ToolCall(call["id"], call["name"], args)])]
        elif kind == "message-end":
            self.ended = True
            if delta.get("error"):
                raise UpstreamError(self.backend, str(delta["error"]))
            finish = _finish(delta.get("finish_reason"))
            return [StreamDelta(usage=_usage(delta.get("usage")), finish_reason=finish)]
        return []

    def done(self) -> bool:
        return self.ended

    def finish(self) -> list[StreamDelta]:
        if not self.ended:
            raise InvalidResponseError(self.backend, "stream ended before message-end (connection cut?)")
        return []
