"""The one interface every backend implements. A backend is pure translation between the neutral
types in `kdeps.llm.types` and its wire format; the transport (`kdeps.llm.transport`) does the HTTP,
retries and deadlines, so no backend touches the network, the YAML, env vars or the engine."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from kdeps import fastjson
from kdeps.llm.catalog import Declaration
from kdeps.llm.errors import InvalidResponseError, LLMError, error_for_status
from kdeps.llm.retry import retry_after
from kdeps.llm.types import ChatRequest, ChatResult, Endpoint, StreamDelta

Repeats = Literal["always", "at temperature 0"]
"""When a failure would come back unchanged on retry: `always` (the server rejects the request itself),
or `at temperature 0` (the model's own output, which greedy decoding reproduces)."""

# A 5xx whose body says the request did not validate is the server's bug or our request's shape, not a
# passing fault: another attempt gets the same answer.
_VALIDATION_5XX = re.compile(r"validation error|validationerror|input should be|field required|"
                             r"is not of type|extra inputs are not permitted", re.IGNORECASE)


def mark_repeats(error: LLMError, repeats: Repeats) -> LLMError:
    """Tag `error` as one that retrying cannot change (the client retries it at most once)."""
    error.repeats = repeats  # type: ignore[attr-defined]
    return error


def model_output_error(backend: str, message: str) -> InvalidResponseError:
    """An answer the model itself got wrong (e.g. tool-call arguments that are not JSON)."""
    error = InvalidResponseError(backend, message)
    mark_repeats(error, "at temperature 0")
    return error


def tool_arguments(backend: str, name: str, raw: Any) -> dict[str, Any]:
    """A tool call's arguments as every backend reads them: an object, or JSON text of one; nothing or
    blank is `{}`. Anything else is the model's mistake (retried at temperature 0)."""
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise model_output_error(backend, f"tool call {name!r} has arguments that are not valid JSON: "
                                          f"{str(raw)[:200]}") from exc
    if not isinstance(value, dict):
        raise model_output_error(backend, f"tool call {name!r} arguments are not a JSON object")
    return value


@dataclass(slots=True)
class HttpCall:
    """One POST to make: absolute URL, headers (auth included) and JSON body."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    params: dict[str, str] = field(default_factory=dict)


class StreamParser(ABC):
    """Turns one stream's events into deltas. SSE backends get (event name or None, data text);
    NDJSON backends get (None, line). Stateful: one parser per stream."""

    @abstractmethod
    def feed(self, event: str | None, data: str) -> list[StreamDelta]: ...

    def done(self) -> bool:
        """True once the backend's end-of-stream marker was seen."""
        return False

    def finish(self) -> list[StreamDelta]:
        """Called when the connection closed; raise InvalidResponseError if the stream was cut."""
        return []


def sampling(request: ChatRequest, wire_names: Mapping[str, str]) -> dict[str, Any]:
    """The request's settings that are set (temperature, top_p, max_tokens, stop, ...), each under the
    backend's name for it; `stop` as a list, and only when it names something."""
    out: dict[str, Any] = {}
    for ours, theirs in wire_names.items():
        value = getattr(request, ours)
        if ours == "stop":
            if value:
                out[theirs] = list(value)
        elif value is not None:
            out[theirs] = value
    return out


def stream_json(backend: str, data: str) -> dict[str, Any]:
    """One stream event's JSON object; anything else means the stream is broken."""
    try:
        value = fastjson.loads(data)
    except ValueError as exc:
        raise InvalidResponseError(backend, f"stream event is not JSON: {data[:200]}") from exc
    if not isinstance(value, dict):
        raise InvalidResponseError(backend, f"stream event is not a JSON object: {data[:200]}")
    return value


def declare(cls: Any, declaration: Declaration) -> None:
    """Give a backend class its catalog row and the attributes read from it."""
    cls.declaration = declaration
    cls.name, cls.env_var = declaration.name, declaration.env_var
    cls.default_base_url = declaration.default_url


class Backend(ABC):
    """An HTTP backend. A subclass sets `declaration` (its `kdeps.llm.catalog` row); `name`,
    `env_var` and `default_base_url` are read from it."""

    declaration: ClassVar[Declaration]
    name: ClassVar[str]
    env_var: ClassVar[str | None] = None
    default_base_url: ClassVar[str] = ""
    stream_format: ClassVar[Literal["sse", "ndjson"]] = "sse"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "declaration" in cls.__dict__:
            declare(cls, cls.declaration)

    @abstractmethod
    def build(self, request: ChatRequest, endpoint: Endpoint, *, stream: bool = False) -> HttpCall:
        """The HTTP call for this request (non-streaming unless `stream`)."""

    @abstractmethod
    def parse(self, data: Any) -> ChatResult:
        """A neutral result from the decoded JSON answer; raise InvalidResponseError on a wrong shape."""

    def stream_parser(self) -> StreamParser:
        raise NotImplementedError(f"{self.name} does not stream")

    def error_message(self, status: int, data: Any, text: str) -> str:
        """The provider's own message from an error body (JSON-decoded `data`, or raw `text`)."""
        if isinstance(data, Mapping):
            err = data.get("error", data)
            if isinstance(err, Mapping):
                msg = err.get("message") or err.get("detail")
                if msg:
                    return str(msg)
            elif isinstance(err, str):
                return err
            if isinstance(data.get("message"), str):
                return str(data["message"])
        return text.strip()[:500] or f"HTTP {status}"

    def error(self, status: int, data: Any, text: str, headers: Mapping[str, str]) -> LLMError:
        """The typed error for a non-2xx answer."""
        cls = error_for_status(status)
        message = self.error_message(status, data, text)
        error = cls(self.name, message, status, self.retry_after(headers, data))
        if status >= 500 and _VALIDATION_5XX.search(message):
            mark_repeats(error, "always")
        return error

    def advice(self, error: LLMError, request: ChatRequest, endpoint: Endpoint) -> str | None:
        """What the user can do about `error`, the final one of a call (e.g. start the server); the
        client appends it to the message."""
        return None

    def retry_after(self, headers: Mapping[str, str], data: Any) -> float | None:
        """Seconds the provider asks us to wait before retrying (see `kdeps.llm.retry.retry_after`)."""
        return retry_after(headers)
