"""Anthropic Messages API (`POST /v1/messages`).

Translation rules worth knowing:

- `max_tokens` is required by the API. We send `request.max_tokens` when set; otherwise the
  resource's `contextLength` (the seed documents it as "Max tokens") capped at 4096, the largest
  output every Claude 3+ model accepts; otherwise 4096.
- System text (`request.system` and any `system` turns) goes to the top-level `system` field.
- JSON mode without tools forces a tool (`json_answer`) whose `input_schema` is the requested schema
  (or an object with the requested keys): every Claude 3+ model supports a forced tool, while native
  structured output only exists on newer models. The tool's input comes back as the reply text.
  With user tools present the tool cannot be forced, so JSON relies on the prompt instruction.
- Tool results travel as `tool_result` blocks in a user turn; consecutive results share one turn.
- Frequency/presence penalties have no Anthropic equivalent and are dropped.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

from kdeps.llm.backends.base import Backend, HttpCall, StreamParser, sampling, stream_json, tool_arguments
from kdeps.llm.catalog import BY_NAME
from kdeps.llm.errors import InvalidResponseError, LLMError, error_for_status
from kdeps.llm.types import ChatRequest, ChatResult, Endpoint, Message, StreamDelta, ToolCall, Usage

log = logging.getLogger(__name__)

API_VERSION = "2023-06-01"
JSON_TOOL = "json_answer"
DEFAULT_MAX_TOKENS = 4096

# Anthropic error `type` -> the HTTP status it stands for (used for errors inside a 200 stream).
# ChatRequest field -> Messages API key (no frequency/presence penalty there)
_SAMPLING = {"temperature": "temperature", "top_p": "top_p", "stop": "stop_sequences"}
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
}


def max_tokens_for(request: ChatRequest) -> int:
    """The `max_tokens` we send: explicit, else contextLength capped at 4096, else 4096."""
    if request.max_tokens:
        return request.max_tokens
    if request.context_length:
        return max(1, min(request.context_length, DEFAULT_MAX_TOKENS))
    return DEFAULT_MAX_TOKENS


def json_tool_schema(request: ChatRequest) -> dict[str, Any]:
    """The input schema of the forced JSON tool."""
    schema = request.json_schema
    if isinstance(schema, dict) and schema.get("type", "object") == "object":
        return {"type": "object", **schema}
    if request.json_keys:
        return {"type": "object", "properties": {k: {} for k in request.json_keys},
                "required": list(request.json_keys)}
    return {"type": "object"}


def _messages_url(base: str) -> str:
    base = base.rstrip("/")
    return base + ("/messages" if base.endswith("/v1") else "/v1/messages")


def _user_content(msg: Message) -> str | list[dict[str, Any]]:
    if not msg.images:
        return msg.content
    blocks: list[dict[str, Any]] = [
        {"type": "image", "source": {"type": "base64", "media_type": img.mime,
                                     "data": base64.b64encode(img.data).decode("ascii")}}
        for img in msg.images
    ]
    if msg.content:
        blocks.append({"type": "text", "text": msg.content})
    return blocks


def _assistant_content(msg: Message) -> str | list[dict[str, Any]]:
    if not msg.tool_calls:
        return msg.content
    blocks: list[dict[str, Any]] = [{"type": "text", "text": msg.content}] if msg.content else []
    blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in msg.tool_calls]
    return blocks


def build_messages(request: ChatRequest) -> tuple[str, list[dict[str, Any]]]:
    """(system text, wire messages) for a request."""
    system = [request.system] if request.system else []
    out: list[dict[str, Any]] = []
    for msg in request.messages:
        if msg.role == "system":
            if msg.content:
                system.append(msg.content)
        elif msg.role == "tool":
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": msg.tool_call_id or "",
                                     "content": msg.content}
            if msg.is_error:
                block["is_error"] = True
            prev = out[-1] if out else None
            if (prev and prev["role"] == "user" and isinstance(prev["content"], list)
                    and all(b.get("type") == "tool_result" for b in prev["content"])):
                prev["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif msg.role == "assistant":
            content = _assistant_content(msg)
            if content:  # the API rejects empty assistant turns
                out.append({"role": "assistant", "content": content})
        else:
            out.append({"role": "user", "content": _user_content(msg)})
    return "\n\n".join(system), out


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, Mapping):
        return Usage()
    given = sum(int(raw.get(k) or 0) for k in
                ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
    return Usage(given, int(raw.get("output_tokens") or 0))


def _finish(reason: Any) -> str:
    return _FINISH.get(reason, str(reason or "").lower())


def stream_error(backend: str, data: Any) -> LLMError:
    """The typed error for an Anthropic error body (`{type: error, error: {type, message}}`)."""
    err = data.get("error") if isinstance(data, Mapping) else None
    err = err if isinstance(err, Mapping) else {}
    status = _ERROR_STATUS.get(str(err.get("type")), 500)
    message = str(err.get("message") or err.get("type") or "error event in the stream")
    return error_for_status(status)(backend, message, status)


class AnthropicBackend(Backend):
    """Claude models through the Messages API."""

    declaration = BY_NAME["anthropic"]

    def build(self, request: ChatRequest, endpoint: Endpoint, *, stream: bool = False) -> HttpCall:
        system, messages = build_messages(request)
        body: dict[str, Any] = {"model": request.model, "max_tokens": max_tokens_for(request),
                                "messages": messages}
        if system:
            body["system"] = system
        body.update(sampling(request, _SAMPLING))
        if request.frequency_penalty is not None or request.presence_penalty is not None:
            log.debug("anthropic has no frequency/presence penalty; dropped")
        tools = [{"name": t.name, "description": t.description,
                  "input_schema": {"type": "object", **t.parameters}} for t in request.tools]
        if request.json_mode and not tools:
            tools = [{"name": JSON_TOOL, "description": "Give the answer as this JSON object.",
                      "input_schema": json_tool_schema(request)}]
            body["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
        if tools:
            body["tools"] = tools
        if stream:
            body["stream"] = True
        headers = {"anthropic-version": API_VERSION}
        if endpoint.api_key:
            headers["x-api-key"] = endpoint.api_key
        return HttpCall(_messages_url(endpoint.base_url or self.default_base_url), headers, body)

    def parse(self, data: Any) -> ChatResult:
        if not isinstance(data, Mapping) or not isinstance(data.get("content"), list):
            raise InvalidResponseError(self.name, "answer has no 'content' list")
        if data.get("type") == "error":
            raise stream_error(self.name, data)
        texts: list[str] = []
        calls: list[ToolCall] = []
        json_answer = False
        for block in data["content"]:
            if not isinstance(block, Mapping):
                continue
            kind = block.get("type")
            if kind == "text":
                texts.append(str(block.get("text", "")))
            elif kind == "tool_use":
                args = block.get("input")
                args = args if isinstance(args, dict) else {}
                if block.get("name") == JSON_TOOL:
                    texts.append(json.dumps(args))
                    json_answer = True
                else:
                    calls.append(ToolCall(str(block.get("id", "")), str(block.get("name", "")), args))
        finish = "stop" if json_answer and not calls else _finish(data.get("stop_reason"))
        return ChatResult(text="".join(texts), tool_calls=calls, finish_reason=finish,
                          usage=_usage(data.get("usage")), model=str(data.get("model", "")),
                          backend=self.name)

    def stream_parser(self) -> StreamParser:
        return AnthropicStreamParser(self.name)

    def error(self, status: int, data: Any, text: str, headers: Mapping[str, str]) -> LLMError:
        err = super().error(status, data, text, headers)
        body = data.get("error") if isinstance(data, Mapping) else None
        kind = body.get("type") if isinstance(body, Mapping) else None
        if kind and kind not in err.message:
            err.message = f"{err.message} ({kind})"
        return err


class AnthropicStreamParser(StreamParser):
    """Assembles Anthropic's event stream: text deltas, tool input JSON, usage, `message_stop`."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.usage = Usage()
        self.finish_reason = ""
        self.blocks: dict[int, dict[str, Any]] = {}
        self.started = self.stopped = self.json_answer = self.called = False

    def feed(self, event: str | None, data: str) -> list[StreamDelta]:
        if not data.strip():
            return []
        obj = stream_json(self.backend, data)
        kind = obj.get("type", event)
        if kind == "error":
            raise stream_error(self.backend, obj)
        if kind == "message_start":
            self.started = True
            self.usage = _usage(obj.get("message", {}).get("usage"))
        elif kind == "content_block_start":
            block = dict(obj.get("content_block") or {})
            block["json"] = ""
            self.blocks[int(obj.get("index", 0))] = block
            if block.get("type") == "text" and block.get("text"):
                return [StreamDelta(text=block["text"])]
        elif kind == "content_block_delta":
            return self._delta(int(obj.get("index", 0)), obj.get("delta") or {})
        elif kind == "content_block_stop":
            return self._block_done(int(obj.get("index", 0)))
        elif kind == "message_delta":
            delta = obj.get("delta") or {}
            if delta.get("stop_reason"):
                self.finish_reason = _finish(delta["stop_reason"])
            usage = obj.get("usage") or {}
            if "output_tokens" in usage:
                self.usage.output_tokens = int(usage["output_tokens"] or 0)
            if usage.get("input_tokens"):
                self.usage.input_tokens = _usage(usage).input_tokens
        elif kind == "message_stop":
            self.stopped = True
            finish = "stop" if self.json_answer and not self.called else self.finish_reason or "stop"
            return [StreamDelta(usage=self.usage, finish_reason=finish)]
        return []  # ping and unknown events

    def _delta(self, index: int, delta: Mapping[str, Any]) -> list[StreamDelta]:
        block = self.blocks.setdefault(index, {"type": "text", "json": ""})
        if delta.get("type") == "text_delta":
            return [StreamDelta(text=str(delta.get("text", "")))]
        if delta.get("type") == "input_json_delta":
            part = str(delta.get("partial_json", ""))
            block["json"] += part
            if block.get("name") == JSON_TOOL:  # the forced JSON answer streams as text
                return [StreamDelta(text=part)] if part else []
        return []

    def _block_done(self, index: int) -> list[StreamDelta]:
        block = self.blocks.pop(index, None)
        if not block or block.get("type") != "tool_use":
            return []
        if block.get("name") == JSON_TOOL:
            self.json_answer = True
            return []
        self.called = True
        args = tool_arguments(self.backend, str(block.get("name")), block["json"])
        call = ToolCall(str(block.get("id", "")), str(block.get("name", "")), args)
        return [StreamDelta(tool_calls=[call])]

    def done(self) -> bool:
        return self.stopped

    def finish(self) -> list[StreamDelta]:
        if not self.stopped:
            raise InvalidResponseError(self.backend, "stream ended before message_stop (connection cut?)")
        return []
