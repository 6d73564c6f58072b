"""Ollama's native chat API (`POST /api/chat`), non-streaming and NDJSON streaming.

Ollama streams unless told otherwise, so a non-streaming call always sends ``"stream": false``.
A base URL that already ends in ``/api`` gets ``/chat``; anything else gets ``/api/chat``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from kdeps.llm.backends.base import Backend, HttpCall, StreamParser, sampling, stream_json, tool_arguments
from kdeps.llm.catalog import BY_NAME
from kdeps.llm.errors import (
    InvalidResponseError,
    LLMConnectionError,
    LLMError,
    NotFoundError,
    UpstreamError,
)
from kdeps.llm.types import ChatRequest, ChatResult, Endpoint, Message, StreamDelta, ToolCall, Usage

_MODEL_NOT_FOUND = re.compile(r"""model\s+['"]?([^'"\s]+?)['"]?\s+not found""", re.IGNORECASE)

_OPTIONS = {"temperature": "temperature", "top_p": "top_p", "max_tokens": "num_predict",
            "context_length": "num_ctx", "frequency_penalty": "frequency_penalty",
            "presence_penalty": "presence_penalty", "stop": "stop"}


class OllamaBackend(Backend):
    declaration = BY_NAME["ollama"]
    stream_format: ClassVar[Literal["sse", "ndjson"]] = "ndjson"

    def build(self, request: ChatRequest, endpoint: Endpoint, *, stream: bool = False) -> HttpCall:
        base = (endpoint.base_url or self.default_base_url).strip().rstrip("/")
        url = base + ("/chat" if base.endswith("/api") else "/api/chat")
        headers = {"Content-Type": "application/json",
                   "Accept": "application/x-ndjson" if stream else "application/json"}
        if endpoint.api_key:  # ollama.com and authenticating proxies; a local server needs none
            headers["Authorization"] = f"Bearer {endpoint.api_key}"

        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.extend(_message(m) for m in request.messages)
        body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": stream}

        options = sampling(request, _OPTIONS)
        if options:
            body["options"] = options
        if request.json_schema is not None:
            body["format"] = request.json_schema
        elif request.json_mode:
            body["format"] = "json"
        if request.tools:
            body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                               "parameters": t.parameters}}
                             for t in request.tools]
        return HttpCall(url, headers, body)

    def parse(self, data: Any) -> ChatResult:
        if not isinstance(data, dict):
            raise InvalidResponseError(self.name, f"expected a JSON object, got {type(data).__name__}")
        if isinstance(data.get("error"), str):
            raise UpstreamError(self.name, data["error"])
        message = data.get("message")
        if not isinstance(message, dict):
            raise InvalidResponseError(self.name, "the answer has no message")
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise InvalidResponseError(self.name, "the answer's content is not text")
        calls = [_tool_call(self.name, i, c) for i, c in enumerate(message.get("tool_calls") or [])]
        return ChatResult(text=content, tool_calls=calls, finish_reason=data.get("done_reason") or "",
                          usage=_usage(data), model=data.get("model") or "", backend=self.name)

    def error(self, status: int, data: Any, text: str, headers: Mapping[str, str]) -> LLMError:
        err = super().error(status, data, text, headers)
        if status == 404:
            found = _MODEL_NOT_FOUND.search(err.message)
            if found:
                hint = f"download it with `ollama pull {found.group(1)}`"
                return NotFoundError(self.name, f"{err.message} — {hint}", status)
        return err

    def advice(self, error: LLMError, request: ChatRequest, endpoint: Endpoint) -> str | None:
        if isinstance(error, NotFoundError) and "pull" not in error.message:
            return f"is the model pulled? try: ollama pull {request.model}"
        if isinstance(error, LLMConnectionError):
            return (f"could not reach Ollama at {endpoint.base_url}; start it with `ollama serve` "
                    "or set baseUrl")
        return None

    def stream_parser(self) -> StreamParser:
        return OllamaStreamParser(self.name)


class OllamaStreamParser(StreamParser):
    """One JSON object per line; the last has ``"done": true`` with the counts."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._done = False
        self._calls: list[ToolCall] = []

    def feed(self, event: str | None, data: str) -> list[StreamDelta]:
        line = data.strip()
        if not line or self._done:
            return []
        chunk = stream_json(self.backend, line)
        if chunk.get("error"):
            raise UpstreamError(self.backend, str(chunk["error"]))
        out: list[StreamDelta] = []
        message = chunk.get("message") or {}
        if isinstance(message, dict):
            if message.get("content"):
                out.append(StreamDelta(text=str(message["content"])))
            for call in message.get("tool_calls") or []:
                self._calls.append(_tool_call(self.backend, len(self._calls), call))
        if chunk.get("done"):
            self._done = True
            out.append(StreamDelta(tool_calls=self._calls, usage=_usage(chunk),
                                   finish_reason=chunk.get("done_reason") or "stop"))
        return out

    def done(self) -> bool:
        return self._done

    def finish(self) -> list[StreamDelta]:
        if not self._done:
            raise InvalidResponseError(self.backend, 'stream cut: the connection closed before "done": true')
        return []


def _message(m: Message) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.role == "tool":
        if m.is_error and not m.content.lower().startswith("error"):
            msg["content"] = f"Error: {m.content}"
        if m.name:
            msg["tool_name"] = m.name
        if m.tool_call_id:
            msg["tool_call_id"] = m.tool_call_id
    if m.images:
        msg["images"] = [base64.b64encode(img.data).decode() for img in m.images]
    if m.tool_calls:
        msg["tool_calls"] = [{"id": c.id, "function": {"name": c.name, "arguments": c.arguments}}
                             if c.id else {"function": {"name": c.name, "arguments": c.arguments}}
                             for c in m.tool_calls]
    return msg


def _tool_call(backend: str, index: int, call: Any) -> ToolCall:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise InvalidResponseError(backend, f"tool call #{index} has no function name")
    args = tool_arguments(backend, fn["name"], fn.get("arguments"))  # Ollama sends an object
    return ToolCall(id=str(call.get("id") or f"call_{index}"), name=fn["name"], arguments=args)


def _usage(data: dict[str, Any]) -> Usage:
    return Usage(input_tokens=int(data.get("prompt_eval_count") or 0),
                 output_tokens=int(data.get("eval_count") or 0))


BACKENDS: dict[str, type[Backend]] = {"ollama": OllamaBackend}
