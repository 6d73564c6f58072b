"""When to try a failed call again: the policy, jittered exponential backoff, a server's
`Retry-After`, and the caller's deadline. LLM calls (`kdeps.llm.client`) and `httpClient` both use it."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts in total (first call included) and backoff in seconds."""

    max_attempts: int = 3
    initial_delay: float = 1.0
    max_delay: float = 30.0
    backoff_multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"retry maxAttempts must be at least 1, got {self.max_attempts}")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays cannot be negative")
        if self.backoff_multiplier < 1:
            raise ValueError(f"retry backoffMultiplier must be at least 1, got {self.backoff_multiplier}")

    @classmethod
    def from_config(cls, config: Any) -> RetryPolicy:
        """From a `retry:` mapping (camelCase or snake_case keys) or an object with those attributes."""
        if config is None:
            return cls()
        names = {"max_attempts": "maxAttempts", "initial_delay": "initialDelay", "max_delay": "maxDelay",
                 "backoff_multiplier": "backoffMultiplier"}
        values: dict[str, Any] = {}
        for snake, camel in names.items():
            if isinstance(config, Mapping):
                value = config.get(snake, config.get(camel))
            else:
                value = getattr(config, snake, None)
            if value is not None:
                values[snake] = int(value) if snake == "max_attempts" else float(value)
        return cls(**values)

    def backoff(self, attempt: int) -> float:
        """Wait after failed attempt number `attempt` (1-based): exponential, capped, up to 25 % shorter."""
        base = min(self.max_delay, self.initial_delay * self.backoff_multiplier ** (attempt - 1))
        return base * random.uniform(0.75, 1.0)

    def next_wait(self, attempt: int, retry_after: float | None, left: float) -> float | None:
        """Seconds to wait after failed attempt `attempt` with `left` seconds to the deadline, or None
        to give up now. A server-given wait is honoured when it is at most `max_delay` (a longer one
        falls back to backoff); one that ends after the deadline gives up at once, so a fallback can
        start while there is time."""
        if attempt >= self.max_attempts or left <= 0:
            return None
        if retry_after is not None and retry_after >= left:
            return None
        honoured = retry_after is not None and retry_after <= self.max_delay
        wait = retry_after if honoured and retry_after is not None else self.backoff(attempt)
        return wait if wait < left else None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a server asks us to wait, from `retry-after-ms` or `Retry-After` (seconds or an HTTP
    date); None when it says nothing usable. Header names match in any case."""
    lowered = {str(k).lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None
