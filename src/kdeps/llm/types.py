"""Provider-neutral chat types. Backends translate these to and from their wire formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class ImagePart:
    """An image to show the model: raw bytes and MIME type (image/png, image/jpeg, image/gif, image/webp)."""

    data: bytes
    mime: str
    name: str = ""


@dataclass(slots=True)
class ToolCall:
    """A call the model asked for. `arguments` is always a parsed JSON object. `signature` is an
    opaque token the provider wants back with this call on the next turn (Gemini's thought signature)."""

    id: str
    name: str
    arguments: dict[str, Any]
    signature: str | None = None


@dataclass(slots=True)
class Message:
    """One turn. `images` ride along with a user turn; `tool_calls` with an assistant turn;
    a `tool` turn carries one tool result (`tool_call_id`, `name`, `content` as text)."""

    role: Role
    content: str = ""
    images: list[ImagePart] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False


@dataclass(slots=True)
class ToolSpec:
    """A function the model may call; `parameters` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class ChatRequest:
    model: str
    messages: list[Message]
    system: str | None = None
    tools: list[ToolSpec] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    context_length: int | None = None
    stop: list[str] = field(default_factory=list)
    json_mode: bool = False
    json_keys: list[str] = field(default_factory=list)
    json_schema: dict[str, Any] | None = None
    stream: bool = False
    timeout: float = 60.0


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(slots=True)
class ChatResult:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = ""
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    backend: str = ""
    attempts: int = 1


@dataclass(slots=True)
class StreamDelta:
    """One piece of a streamed answer: text, completed tool calls, and usage/finish at the end."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str = ""


@dataclass(slots=True)
class Endpoint:
    """Where and how to reach a backend: resolved by the chat action (YAML, env), never by a backend."""

    backend: str
    base_url: str
    api_key: str | None = None
