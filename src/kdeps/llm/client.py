"""Calling a model: deadline, retries, streaming and fallback around the backends.

`complete()` and `stream()` talk to one backend; `complete_with_fallback()` tries alternatives in
order. The whole call (every attempt, every wait, every alternative) fits in `request.timeout`
seconds from the moment it starts. HTTP backends go through `kdeps.llm.transport`; in-process ones
(`LocalBackend`, e.g. gguf) are awaited directly under the same deadline and retry rules.

Retry rules: connection errors, timeouts (while time remains), 408, 409, 429, 5xx (529 included) and
unparseable answers are retried; other 4xx never are. A server-given wait (`retry-after-ms`,
`Retry-After`, Gemini RetryInfo → `LLMError.retry_after`) is honoured when it fits in `max_delay`;
a longer one that still fits the deadline falls back to jittered exponential backoff; a wait that does
not fit the remaining deadline ends the call at once with the last error, so fallback can start.

Fallback happens only on those same transient errors (after the backend's retries); never on
400/401/403/404/422, which would fail the same way elsewhere or point at a configuration mistake
the user must see. A stream falls back (or retries) only before its first delta.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from kdeps.addresses import is_loopback
from kdeps.llm import transport
from kdeps.llm.errors import InvalidResponseError, LLMConnectionError, LLMError, LLMTimeoutError
from kdeps.llm.registry import (
    backend_info,
    check_api_key,
    check_supported,
    get_backend,
    is_local,
    resolve_endpoint,
)
from kdeps.llm.retry import RetryPolicy
from kdeps.llm.types import ChatRequest, ChatResult, Endpoint, StreamDelta, ToolCall, Usage

__all__ = [
    "RetryPolicy",
    "check_api_key",
    "complete",
    "complete_with_fallback",
    "redact",
    "resolve_endpoint",
    "stream",
]

log = logging.getLogger("kdeps.llm")

# Errors a backend's parser may raise on a malformed answer; they mean "invalid response".
_PARSE_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError)

_sleep = asyncio.sleep  # tests replace it to see the waits between attempts


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret replaced by `***` (longest first, so overlapping keys vanish whole).
    Values shorter than 4 characters are left alone: no real key is that short, and replacing them
    would mangle the message."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# -- one backend ---------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Call:
    """State shared by every attempt of one top-level call."""

    deadline: float
    timeout: float
    policy: RetryPolicy
    secrets: list[str]
    attempts: int = 0
    explicit: bool = False  # the resource wrote `retry:`


def _start(request: ChatRequest, retry: RetryPolicy | None, endpoints: Sequence[Endpoint]) -> _Call:
    timeout = float(request.timeout)
    if timeout <= 0:
        raise ValueError(f"request timeout must be positive, got {timeout}")
    return _Call(deadline=time.monotonic() + timeout, timeout=timeout, policy=retry or RetryPolicy(),
                 secrets=[e.api_key for e in endpoints if e.api_key], explicit=retry is not None)


def _prepare(request: ChatRequest, endpoint: Endpoint) -> tuple[Any, Endpoint]:
    """The backend and a complete endpoint (default URL filled in); AuthError if a needed key is
    missing, BadRequestError if the request needs what the backend lacks."""
    check_supported(request, endpoint)
    backend = get_backend(endpoint.backend)
    if not endpoint.base_url:
        endpoint = replace(endpoint, base_url=backend_info(endpoint.backend).default_url)
    check_api_key(endpoint)
    return backend, endpoint


async def complete(request: ChatRequest, endpoint: Endpoint, *,
                   retry: RetryPolicy | None = None) -> ChatResult:
    """One answer from `endpoint`'s backend, retried per `retry`, all within `request.timeout` seconds.
    Sets `result.backend` and `result.attempts`."""
    call = _start(request, retry, [endpoint])
    return await _complete(request, endpoint, call)


async def stream(request: ChatRequest, endpoint: Endpoint, *,
                 retry: RetryPolicy | None = None) -> AsyncGenerator[StreamDelta, None]:
    """The answer as deltas while it is generated. Retried only before the first delta."""
    call = _start(request, retry, [endpoint])
    async with aclosing(_stream(request, endpoint, call)) as deltas:
        async for delta in deltas:
            yield delta


async def _complete(request: ChatRequest, endpoint: Endpoint, call: _Call) -> ChatResult:
    async with aclosing(_attempts(request, endpoint, call, streaming=False)) as results:
        async for result in results:
            assert isinstance(result, ChatResult)
            return result
    raise AssertionError("unreachable")  # _attempts yields an answer or raises


async def _stream(request: ChatRequest, endpoint: Endpoint, call: _Call) -> AsyncGenerator[StreamDelta, None]:
    async with aclosing(_attempts(request, endpoint, call, streaming=True)) as deltas:
        async for delta in deltas:
            assert isinstance(delta, StreamDelta)
            yield delta


async def _attempts(request: ChatRequest, endpoint: Endpoint, call: _Call, *,
                    streaming: bool) -> AsyncGenerator[ChatResult | StreamDelta, None]:
    """The retry loop shared by plain and streamed calls: one ChatResult, or the deltas of one
    stream (retried only before its first delta)."""
    backend, endpoint = _prepare(request, endpoint)
    attempt = 0
    first: str | None = None
    while True:
        attempt += 1
        call.attempts += 1
        started = False
        try:
            if streaming:
                async with aclosing(_stream_once(backend, request, endpoint, call.deadline)) as deltas:
                    async for delta in deltas:
                        started = True
                        yield delta
            else:
                result = await _attempt(backend, request, endpoint, call.deadline)
                result.backend = endpoint.backend
                result.attempts = attempt
                yield result
            return
        except LLMError as exc:
            error = _clean(exc, call)
            first = first or str(error)
            wait = None if started else _next_wait(call, error, attempt, request, endpoint)
            if wait is None:
                advice = None if is_local(backend) else backend.advice(error, request, endpoint)
                raise _give_up(error, first, attempt, advice) from None
            _log_retry(error, wait, attempt, call)
        await _sleep(wait)


async def _attempt(backend: Any, request: ChatRequest, endpoint: Endpoint, deadline: float) -> ChatResult:
    if is_local(backend):
        left = deadline - time.monotonic()
        if left <= 0:
            raise LLMTimeoutError(endpoint.backend, "deadline passed before the call")
        try:
            async with asyncio.timeout(left):
                answer: ChatResult = await backend.complete(request, endpoint)
                return answer
        except TimeoutError:
            raise LLMTimeoutError(endpoint.backend, f"no answer within {left:.3g} s") from None
    http = backend.build(request, endpoint, stream=False)
    status, headers, data, text = await transport.post_json(http, deadline, backend=endpoint.backend)
    if not 200 <= status < 300:
        raise _named(backend.error(status, data, text, headers), http)
    try:
        parsed: ChatResult = backend.parse(data)
    except _PARSE_ERRORS as exc:
        raise InvalidResponseError(endpoint.backend, f"unexpected answer shape ({type(exc).__name__}: "
                                   f"{str(exc)[:200]})", status) from None
    return parsed


async def _stream_once(backend: Any, request: ChatRequest, endpoint: Endpoint,
                       deadline: float) -> AsyncGenerator[StreamDelta, None]:
    if is_local(backend):
        async with aclosing(backend.stream(request, endpoint)) as local:
            while True:
                left = deadline - time.monotonic()
                try:
                    async with asyncio.timeout(max(left, 0.0)):
                        delta = await anext(local)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise LLMTimeoutError(endpoint.backend, "stream did not finish in time") from None
                yield delta
    http = backend.build(request, endpoint, stream=True)
    fmt = backend.stream_format
    accept = "application/x-ndjson" if fmt == "ndjson" else "text/event-stream"
    async with transport.open_stream(http, deadline, backend=endpoint.backend, accept=accept) as response:
        if not 200 <= response.status < 300:
            data, text = await response.read_body()
            raise _named(backend.error(response.status, data, text, response.headers), http)
        parser = backend.stream_parser()
        try:
            async with aclosing(response.events(fmt)) as events:
                async for event, data in events:
                    for delta in parser.feed(event, data):
                        yield delta
                    if parser.done():
                        break
            for delta in parser.finish():
                yield delta
        except _PARSE_ERRORS as exc:
            raise InvalidResponseError(endpoint.backend, f"unexpected stream event ({type(exc).__name__}: "
                                       f"{str(exc)[:200]})") from None


# -- retry decisions -----------------------------------------------------------------------------------

def _next_wait(call: _Call, error: LLMError, attempt: int, request: ChatRequest,
               endpoint: Endpoint) -> float | None:
    """Seconds to wait before another attempt, or None to give up now."""
    if not error.retryable:
        return None
    if isinstance(error, LLMConnectionError) and not call.explicit and is_loopback(
            urlsplit(endpoint.base_url).hostname or ""):
        return None  # a local server that is not running will not start in the next second
    if attempt >= 2 and _repeats(error, request):
        return None  # one more try covers a fluke; more cannot change the answer
    return call.policy.next_wait(attempt, error.retry_after, call.deadline - time.monotonic())


def _repeats(error: LLMError, request: ChatRequest) -> bool:
    """True when another attempt would fail the same way (see `backends.base.mark_repeats`)."""
    repeats = getattr(error, "repeats", None)
    return repeats == "always" or (repeats == "at temperature 0" and request.temperature == 0)


def _named(error: LLMError, http: Any) -> LLMError:
    """An HTTP error that says which URL was called (no user info, no query values)."""
    error.message = f"{error.message} (POST {transport.safe_url(http.url)})"
    error.args = (str(error),)
    return error


def _give_up(error: LLMError, first: str, attempt: int, advice: str | None = None) -> LLMError:
    """The final error of a call tried `attempt` times: it names the first failure when that differed,
    and ends with the backend's advice, if any."""
    notes = [advice] if advice else []
    if attempt > 1:
        same = first == str(error)
        notes.append(f"same on all {attempt} attempts" if same else f"first of {attempt} attempts: {first}")
    if notes:
        error.message += "".join(f" ({note})" for note in notes)
        error.args = (str(error),)
    return error


def _clean(exc: LLMError, call: _Call) -> LLMError:
    """The error with keys redacted, and a timeout at the deadline reworded to name the duration."""
    message = redact(exc.message, call.secrets)
    if isinstance(exc, LLMTimeoutError) and call.deadline - time.monotonic() <= 0.01:
        message = f"no complete answer within {call.timeout:g} s (timeout, retries included)"
    if message != exc.message:
        exc.message = message
        exc.args = (str(exc),)
    return exc


def _log_retry(error: LLMError, wait: float, attempt: int, call: _Call) -> None:
    status = f"HTTP {error.upstream_status}" if error.upstream_status else type(error).__name__
    log.warning("%s: %s (%s); retrying in %.2f s (attempt %d of %d)", error.backend, status,
                error.message[:200], wait, attempt + 1, call.policy.max_attempts)


# -- fallback ------------------------------------------------------------------------------------------

Alternative = Endpoint | tuple[Endpoint, str | Mapping[str, Any] | None]
"""A fallback target: an endpoint, optionally with a model name or ChatRequest field overrides."""


def _target(alternative: Alternative) -> tuple[Endpoint, dict[str, Any]]:
    if isinstance(alternative, Endpoint):
        return alternative, {}
    endpoint, extra = alternative
    if extra is None:
        return endpoint, {}
    if isinstance(extra, str):
        return endpoint, ({"model": extra} if extra else {})
    return endpoint, dict(extra)


def _falls_back(error: LLMError, call: _Call) -> bool:
    return error.retryable and call.deadline - time.monotonic() > 0


async def complete_with_fallback(
    request: ChatRequest,
    primary: Endpoint,
    alternatives: Sequence[Alternative],
    *,
    retry: RetryPolicy | None = None,
    on_delta: Callable[[str], Awaitable[None]] | None = None,
) -> ChatResult:
    """Like `complete`, trying each alternative in order when the previous one failed with a transient
    error after its retries. All of it fits in `request.timeout`. With `on_delta`, each target is
    streamed and its text passed to `on_delta` as it comes; once text was passed on, no fallback.
    `result.backend` names the backend that answered; `result.attempts` counts every attempt made."""
    targets = [(primary, {}), *(_target(a) for a in alternatives)]
    call = _start(request, retry, [e for e, _ in targets])
    failures: list[LLMError] = []
    emitted = False

    async def forward(text: str) -> None:
        nonlocal emitted
        emitted = True
        if on_delta is not None:
            await on_delta(text)

    for index, (endpoint, overrides) in enumerate(targets):
        target_request = replace(request, **overrides) if overrides else request
        try:
            if on_delta is None:
                result = await _complete(target_request, endpoint, call)
            else:
                result = await _collect(target_request, endpoint, call, forward)
        except LLMError as exc:
            if index == len(targets) - 1 or emitted or not _falls_back(exc, call):
                raise _with_history(exc, failures, call) from None
            failures.append(exc)
            nxt = targets[index + 1][0].backend
            log.warning("%s failed (%s); falling back to %s", exc.backend, exc.message[:200], nxt)
            continue
        result.attempts = call.attempts
        return result
    raise AssertionError("unreachable")  # the loop returns or raises


async def _collect(request: ChatRequest, endpoint: Endpoint, call: _Call,
                   forward: Callable[[str], Awaitable[None]]) -> ChatResult:
    parts: list[str] = []
    tool_calls: list[ToolCall] = []
    usage = Usage()
    finish = ""
    async with aclosing(_stream(request, endpoint, call)) as deltas:
        async for delta in deltas:
            if delta.text:
                parts.append(delta.text)
                await forward(delta.text)
            tool_calls.extend(delta.tool_calls)
            if delta.usage is not None:
                usage = delta.usage
            finish = delta.finish_reason or finish
    return ChatResult(text="".join(parts), tool_calls=tool_calls, finish_reason=finish, usage=usage,
                      model=request.model, backend=endpoint.backend, attempts=call.attempts)


def _with_history(error: LLMError, failures: list[LLMError], call: _Call) -> LLMError:
    if failures:
        earlier = "; ".join(str(f) for f in failures)
        error.message = redact(f"{error.message} (after fallback from: {earlier})", call.secrets)
        error.args = (str(error),)
    return error
