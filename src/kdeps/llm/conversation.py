"""A client's conversation, as sent to the OpenAI-compatible endpoint (`/v1/chat/completions`), carried
with the request to the chat resource that answers it.

The server turns the client's messages and sampling parameters into a :class:`Conversation`; a chat
resource adopts it unless it says otherwise (a resource with its own `scenario` keeps it), and reports
back how the model stopped, so the endpoint can answer with the upstream `finish_reason`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kdeps.llm.types import ChatRequest, Message, ToolCall


@dataclass(slots=True)
class Conversation:
    system: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    json_mode: bool = False
    json_schema: dict[str, Any] | None = None
    finish_reason: str = ""  # written by the chat resource that answered

    @classmethod
    def from_openai(cls, payload: dict[str, Any]) -> Conversation:
        """From a validated chat-completions request body."""
        conv = cls()
        for raw in payload.get("messages") or []:
            role = raw.get("role")
            text = _text(raw.get("content"))
            if role in ("system", "developer"):
                if text.strip():
                    conv.system.append(text)
            elif role == "tool":
                conv.messages.append(Message("tool", text, tool_call_id=str(raw.get("tool_call_id") or "")))
            elif role in ("user", "assistant"):
                calls = [_call(c) for c in raw.get("tool_calls") or [] if isinstance(c, dict)]
                conv.messages.append(Message(role, text, tool_calls=calls, name=raw.get("name")))
        limit = payload.get("max_completion_tokens", payload.get("max_tokens"))
        conv.max_tokens = limit if isinstance(limit, int) else None
        conv.temperature = payload.get("temperature")
        conv.top_p = payload.get("top_p")
        stop = payload.get("stop")
        conv.stop = [stop] if isinstance(stop, str) else [str(s) for s in stop or []]
        fmt = payload.get("response_format") or {}
        if fmt.get("type") == "json_object":
            conv.json_mode = True
        elif fmt.get("type") == "json_schema":
            conv.json_mode = True
            schema = (fmt.get("json_schema") or {}).get("schema")
            conv.json_schema = schema if isinstance(schema, dict) else None
        return conv

    def adopt(self, system: str | None, messages: list[Message]) -> tuple[str | None, list[Message]]:
        """The resource's system prompt and turns (without a scenario) merged with the client's: the client's
        system messages come first, then the resource's own; the client's turns are the conversation, and a
        resource prompt that is not just the client's last user message replaces that message's text."""
        turns = [Message(m.role, m.content, tool_calls=list(m.tool_calls), tool_call_id=m.tool_call_id,
                         name=m.name) for m in self.messages]
        last_user = next((m for m in reversed(turns) if m.role == "user"), None)
        own = next((m for m in messages if m.role == "user" and m.content.strip()), None)
        if own is not None:
            if last_user is None:
                turns.append(own)
            elif own.content.strip() != last_user.content.strip():
                last_user.content = own.content
        merged = "\n\n".join([*self.system, *([system] if system else [])]) or None
        return merged, turns or messages

    def fill(self, request: ChatRequest, *, json_set: bool) -> None:
        """The client's parameters on `request` where the resource left them unset."""
        if request.max_tokens is None:
            request.max_tokens = self.max_tokens
        if request.temperature is None:
            request.temperature = self.temperature
        if request.top_p is None:
            request.top_p = self.top_p
        if not request.stop:
            request.stop = list(self.stop)
        if not json_set and self.json_mode:
            request.json_mode, request.json_schema = True, self.json_schema


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(str(p.get("text", "")) for p in parts)
    return ""


def _call(raw: dict[str, Any]) -> ToolCall:
    fn: dict[str, Any] = raw["function"] if isinstance(raw.get("function"), dict) else {}
    args: Any = fn.get("arguments")
    try:
        args = json.loads(args) if isinstance(args, str) and args.strip() else args or {}
    except ValueError:
        args = {}
    args = args if isinstance(args, dict) else {}
    return ToolCall(str(raw.get("id") or ""), str(fn.get("name") or ""), args)
