"""Provider-neutral LLM calls: `await kdeps.llm.complete(request, endpoint)`.

Types and errors import cheaply; the client (and aiohttp with it) loads on first use of a call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kdeps.llm.errors import (
    AuthError,
    BadRequestError,
    InvalidResponseError,
    LLMConnectionError,
    LLMError,
    LLMTimeoutError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
)
from kdeps.llm.types import (
    ChatRequest,
    ChatResult,
    Endpoint,
    ImagePart,
    Message,
    StreamDelta,
    ToolCall,
    ToolSpec,
    Usage,
)

if TYPE_CHECKING:
    from kdeps.llm.client import complete, complete_with_fallback, redact, stream
    from kdeps.llm.registry import BACKENDS, get_backend, resolve_endpoint
    from kdeps.llm.retry import RetryPolicy

_LAZY = {
    "complete": "kdeps.llm.client",
    "complete_with_fallback": "kdeps.llm.client",
    "stream": "kdeps.llm.client",
    "RetryPolicy": "kdeps.llm.retry",
    "redact": "kdeps.llm.client",
    "BACKENDS": "kdeps.llm.registry",
    "get_backend": "kdeps.llm.registry",
    "resolve_endpoint": "kdeps.llm.registry",
}

__all__ = [
    "BACKENDS",
    "AuthError",
    "BadRequestError",
    "ChatRequest",
    "ChatResult",
    "Endpoint",
    "ImagePart",
    "InvalidResponseError",
    "LLMConnectionError",
    "LLMError",
    "LLMTimeoutError",
    "Message",
    "NotFoundError",
    "RateLimitError",
    "RetryPolicy",
    "StreamDelta",
    "ToolCall",
    "ToolSpec",
    "UpstreamError",
    "Usage",
    "complete",
    "complete_with_fallback",
    "get_backend",
    "redact",
    "resolve_endpoint",
    "stream",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kdeps.llm' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
