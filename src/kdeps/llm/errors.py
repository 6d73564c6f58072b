"""Typed LLM errors. Each carries the backend, the HTTP status (0 when none) and the provider's own
message, and never the API key."""

from __future__ import annotations

from kdeps.errors import KdepsError


class LLMError(KdepsError):
    retryable = False

    def __init__(self, backend: str, message: str, status: int = 0, retry_after: float | None = None) -> None:
        self.backend, self.message, self.status, self.retry_after = backend, message, status, retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        status = f" HTTP {self.status}" if self.status else ""
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
