"""A strict fake of Anthropic's Messages API (`POST /v1/messages`).

Rejects what the real API rejects, with its status and error body: wrong path (404
not_found_error), missing or wrong key (401 authentication_error), missing `anthropic-version`,
missing `max_tokens`/`model`/`messages`, unknown top-level fields, a `system` role inside
`messages`, temperature outside 0-1, empty text blocks, bad images, and `tool_result` blocks
that do not answer a `tool_use` of the previous assistant turn (all 400 invalid_request_error).

Script answers with :meth:`AnthropicFake.reply`; the same scripted answer comes back as JSON or
as an event stream, whichever the request asked for.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Self

from tests.fakes.base import FakeServer, Recorded, Reply, json_reply, sse, stream_reply

KEY = "sk-ant-fake-key"
_TOP_LEVEL = {
    "model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k", "stop_sequences",
    "stream", "metadata", "tools", "tool_choice", "thinking", "service_tier", "output_config",
}
_MEDIA = {"image/jpeg", "image/png", "image/gif", "image/webp"}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error"}


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}


def message(text: str = "", tool_calls: Sequence[tuple[str, dict[str, Any]]] = (), *,
            model: str = "claude-3-5-sonnet-20241022", usage: tuple[int, int] = (12, 7),
            stop_reason: str | None = None) -> dict[str, Any]:
    """A Messages API answer: optional text block, then one tool_use block per (name, input)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text or not tool_calls else []
    content += [{"type": "tool_use", "id": f"toolu_{i:02d}{name}", "name": name, "input": args}
                for i, (name, args) in enumerate(tool_calls)]
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason or ("tool_use" if tool_calls else "end_turn"), "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]}}


def _pieces(text: str, n: int) -> list[str]:
    size = max(1, -(-len(text) // n))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def events(msg: dict[str, Any], pieces: int = 3) -> list[str]:
    """The SSE events the API streams for `msg` (text and tool input split into `pieces` deltas)."""
    import json

    head = {**msg, "content": [], "stop_reason": None,
            "usage": {"input_tokens": msg["usage"]["input_tokens"], "output_tokens": 1}}
    out = [sse({"type": "message_start", "message": head}, "message_start"), sse({"type": "ping"}, "ping")]
    for i, block in enumerate(msg["content"]):
        if block["type"] == "text":
            out.append(sse({"type": "content_block_start", "index": i,
                            "content_block": {"type": "text", "text": ""}}, "content_block_start"))
            out += [sse({"type": "content_block_delta", "index": i,
                         "delta": {"type": "text_delta", "text": p}}, "content_block_delta")
                    for p in _pieces(block["text"], pieces)]
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            out.append(sse({"type": "content_block_start", "index": i, "content_block": start},
                           "content_block_start"))
            out += [sse({"type": "content_block_delta", "index": i,
                         "delta": {"type": "input_json_delta", "partial_json": p}}, "content_block_delta")
                    for p in _pieces(json.dumps(block["input"]), pieces)]
        out.append(sse({"type": "content_block_stop", "index": i}, "content_block_stop"))
    delta = {"stop_reason": msg["stop_reason"], "stop_sequence": None}
    out.append(sse({"type": "message_delta", "delta": delta,
                    "usage": {"output_tokens": msg["usage"]["output_tokens"]}}, "message_delta"))
    out.append(sse({"type": "message_stop"}, "message_stop"))
    return out


def error_event(status: int, message_text: str) -> str:
    """An `error` event as sent mid-stream (e.g. overloaded_error)."""
    return sse(error_body(status, message_text), "error")


def _bad(message_text: str) -> Reply:
    return json_reply(error_body(400, message_text), 400)


class AnthropicFake(FakeServer):
    """Scriptable Anthropic server; `key` is the only API key it accepts."""

    def __init__(self, key: str = KEY) -> None:
        super().__init__()
        self.key = key

    def error_body(self, status: int, message: str) -> Any:
        return error_body(status, message)

    def default(self, rec: Recorded) -> Reply:
        return self._answer(rec, message("ok"), 3, None)

    def reply(self, text: str = "", tool_calls: Sequence[tuple[str, dict[str, Any]]] = (), *,
              usage: tuple[int, int] = (12, 7), stop_reason: str | None = None, pieces: int = 3,
              cut_after: int | None = None) -> Self:
        """Queue one answer (JSON, or a stream when the request has `stream: true`)."""
        msg = message(text, tool_calls, usage=usage, stop_reason=stop_reason)
        return self.push(lambda rec: self._answer(rec, msg, pieces, cut_after))

    @staticmethod
    def _answer(rec: Recorded, msg: dict[str, Any], pieces: int, cut_after: int | None) -> Reply:
        msg = {**msg, "model": (rec.json or {}).get("model", msg["model"])}
        if (rec.json or {}).get("stream"):
            return stream_reply(events(msg, pieces), cut_after=cut_after)
        return json_reply(msg)

    # -- strictness ---------------------------------------------------------------------------------
    def validate(self, rec: Recorded) -> Reply | None:
        if rec.method != "POST" or rec.path != "/v1/messages":
            return json_reply(error_body(404, "Not found"), 404)
        key = rec.header("x-api-key")
        bearer = rec.header("authorization", "")
        if key is None and bearer and bearer.startswith("Bearer "):
            key = bearer[7:]
        if not key:
            return json_reply(error_body(401, "x-api-key header is required"), 401)
        if key != self.key:
            return json_reply(error_body(401, "invalid x-api-key"), 401)
        if not rec.header("anthropic-version"):
            return _bad("anthropic-version: header is required")
        body = rec.json
        if not isinstance(body, dict):
            return _bad("request body must be a JSON object")
        for field in sorted(set(body) - _TOP_LEVEL):
            return _bad(f"{field}: Extra inputs are not permitted")
        for field in ("model", "max_tokens", "messages"):
            if field not in body:
                return _bad(f"{field}: Field required")
        if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
            return _bad("max_tokens: Input should be a valid positive integer")
        temp = body.get("temperature")
        if temp is not None and not (isinstance(temp, int | float) and 0 <= temp <= 1):
            return _bad("temperature: Input should be less than or equal to 1")
        if not isinstance(body.get("system", ""), str | list):
            return _bad("system: Input should be a valid string or list of text blocks")
        return self._check_tools(body) or self._check_messages(body["messages"])

    @staticmethod
    def _check_tools(body: dict[str, Any]) -> Reply | None:
        names = set()
        for i, tool in enumerate(body.get("tools") or []):
            if not tool.get("name") or not isinstance(tool.get("input_schema"), dict):
                return _bad(f"tools.{i}: name and input_schema are required")
            if tool["input_schema"].get("type") != "object":
                return _bad(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
            names.add(tool["name"])
        choice = body.get("tool_choice")
        if choice and choice.get("type") == "tool" and choice.get("name") not in names:
            return _bad(f"tool_choice: tool '{choice.get('name')}' not found in tools")
        return None

    @staticmethod
    def _check_messages(messages: Any) -> Reply | None:
        if not isinstance(messages, list) or not messages:
            return _bad("messages: at least one message is required")
        prev_tool_uses: set[str] = set()
        for i, msg in enumerate(messages):
            role = msg.get("role")
            if role not in ("user", "assistant"):
                return _bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
            content = msg.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if not isinstance(blocks, list) or not blocks:
                return _bad(f"messages.{i}: all messages must have non-empty content")
            uses: set[str] = set()
            for j, block in enumerate(blocks):
                where = f"messages.{i}.content.{j}"
                kind = block.get("type")
                if kind == "text" and not block.get("text"):
                    return _bad(f"{where}: text content blocks must be non-empty")
                if kind == "image":
                    source = block.get("source") or {}
                    if source.get("type") != "base64" or source.get("media_type") not in _MEDIA:
                        return _bad(f"{where}.source: expected base64 with a supported media_type")
                    try:
                        base64.b64decode(source.get("data", ""), validate=True)
                    except (binascii.Error, ValueError):
                        return _bad(f"{where}.source.data: invalid base64 data")
                if kind == "tool_use":
                    if role != "assistant" or not isinstance(block.get("input"), dict):
                        return _bad(f"{where}: tool_use needs an assistant turn and an input object")
                    uses.add(block.get("id", ""))
                answered = block.get("tool_use_id") in prev_tool_uses
                if kind == "tool_result" and (role != "user" or not answered):
                    return _bad(f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                                f"{block.get('tool_use_id')}. Each `tool_result` block must have a "
                                "corresponding `tool_use` block in the previous message.")
                if kind not in ("text", "image", "tool_use", "tool_result"):
                    return _bad(f"{where}.type: unknown content block type {kind!r}")
            prev_tool_uses = uses
        return None
