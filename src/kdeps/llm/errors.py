"""Typed LLM errors. Each carries the backend, the HTTP status (0 when none) and the provider's own
message, and never the API key.

`message` (and `str()`) is what an HTTP client may see: any URL or address in it becomes "the upstream", so an
internal base URL (an Ollama host, a gateway) never reaches clients. `detail` keeps the text as written,
with the (already redacted) URL, and is logged once, when the error is made."""

from __future__ import annotations

import logging
import re

from kdeps.errors import KdepsError

log = logging.getLogger("kdeps.llm")

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>()\[\]]*[^\s'\"<>()\[\].,;:!?]")
_HOST = re.compile(r"\bhost [A-Za-z0-9.\-\[\]:]*:\d+")  # aiohttp: "Cannot connect to host h:port"

_ADDRESS = re.compile(r" ?\('[0-9A-Fa-f.:]+', \d+\)")  # asyncio: "Connect call failed ('10.0.0.5', 11434)"


def hide_urls(text: str) -> str:
    """`text` with URLs (and aiohttp's "host NAME:PORT") replaced by "the upstream"."""
    if "://" not in text and "host " not in text and "('" not in text:
        return text
    return _ADDRESS.sub("", _HOST.sub("the upstream", _URL.sub("the upstream", text)))


class LLMError(KdepsError):
    """A failed model call. `upstream_status` is the provider's HTTP status (0 when there was no answer);
    the status kdeps answers its own client with is decided by the engine, not here."""

    retryable = False

    def __init__(self, backend: str, message: str, status: int = 0, retry_after: float | None = None) -> None:
        self.backend, self.upstream_status, self.retry_after = backend, status, retry_after
        self.detail = message
        super().__init__(hide_urls(message))
        if self.message != message:
            log.warning("%s%s: %s", backend, f" HTTP {status}" if status else "", message)

    def __str__(self) -> str:
        status = f" HTTP {self.upstream_status}" if self.upstream_status else ""
        return f"{self.backend}{status}: {self.message}"


class AuthError(LLMError):
    """401/403, or a provider's invalid-key answer; also a missing key (status 0)."""


class NotFoundError(LLMError):
    """404: wrong path or model not found."""


class BadRequestError(LLMError):
    """400/422 and other request errors that would fail again on retry."""


class RateLimitError(LLMError):
    retryable = True


class UpstreamError(LLMError):
    """5xx (Anthropic 529 included), 408 and 409."""

    retryable = True


class LLMTimeoutError(LLMError):
    retryable = True


class LLMConnectionError(LLMError):
    retryable = True


class InvalidResponseError(LLMError):
    """The provider answered something we cannot parse (truncated JSON, wrong shape)."""

    retryable = True


def error_for_status(status: int) -> type[LLMError]:
    """The error class for an HTTP status, as every backend maps it unless its wire says otherwise."""
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFoundError
    if status == 429:
        return RateLimitError
    if status in (408, 409) or status >= 500:
        return UpstreamError
    return BadRequestError
