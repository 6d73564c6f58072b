"""The OpenAI-compatible endpoint (`kdeps run --openai`, or `settings.openaiCompat: true`): the workflow
is served as one "model" so OpenAI clients and SDKs can talk to it.

- `GET /v1/models` lists one model whose id is the workflow's `metadata.name`; `GET /v1/models/{id}`.
- `POST /v1/chat/completions` runs the workflow as if its first POST route had been called, whatever
  `model` the client names (one workflow is served; clients such as litellm send their own names). The
  request body is visible to expressions as usual (`get('messages')`, `get('model')`,
  `get('temperature')`, ...) and `get('q')` is the text of the last user message.
- The client's conversation (system messages and history) and its `max_tokens`, `temperature`,
  `top_p`, `stop` and `response_format` travel with the request (`kdeps.llm.conversation`): a chat
  resource without its own `scenario` answers within that conversation, and the parameters apply where
  the resource does not set them.
- Parameters a workflow cannot honour (`n` > 1, `tools`, `logprobs`, audio output, ...) are refused
  with an OpenAI-style 400 naming them (`_UNSUPPORTED`).
- The answer (`message.content`) comes from the body the workflow route would answer with: its
  `response` (or the whole body when there is none); a string is used as is; an object gives its
  `answer`, else its `data`, when that is a string (unless the client asked for JSON); anything else
  is sent as JSON text.
- `finish_reason` is the one the answering chat resource got from its model (`stop` when no model
  answered); `usage` carries the token counts the engine reports (see `usage_of`), else zeros.
- `stream: true` answers OpenAI-style SSE: `chat.completion.chunk` objects whose `delta.content` are
  the chat resources' streamed deltas (the whole answer as one chunk when nothing streamed), a last
  chunk with the finish reason, an optional usage chunk (`stream_options.include_usage`), then
  `data: [DONE]`. A failure before the first byte is a plain JSON error with its status; after it,
  a `data: {"error": ...}` event (which the official SDK raises as an APIError).
- Errors are OpenAI error objects `{"error": {"message", "type", "param", "code"}}`; the server's bearer
  token, when configured, is checked here too (the SDK sends its api_key as the bearer token).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kdeps.engine.request import RequestData, ResponseData
from kdeps.errors import HTTPError
from kdeps.llm.conversation import Conversation
from kdeps.server.limits import JSONTooDeep, loads_json
from kdeps.server.streaming import ResponseSender, json_bytes, sse

if TYPE_CHECKING:
    from starlette.types import Receive, Scope

    from kdeps.server.app import KdepsASGI

MODELS = "/v1/models"
CHAT = "/v1/chat/completions"
_JSON = {"content-type": "application/json"}
_DONE = b"data: [DONE]\n\n"

Outcome = tuple[str, ResponseData | None]  # (route label for the access log, the workflow's answer)

# Request parameters a workflow cannot honour, each with the test that it was asked for.
_UNSUPPORTED: dict[str, Callable[[Any], bool]] = {
    "n": lambda v: v not in (None, 1),
    "tools": bool,
    "functions": bool,
    "logprobs": bool,
    "top_logprobs": lambda v: v not in (None, 0),
    "logit_bias": bool,
    "audio": bool,
    "modalities": lambda v: v not in (None, ["text"]),
    "prediction": bool,
}
_NUMBERS = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "frequency_penalty": (-2.0, 2.0),
            "presence_penalty": (-2.0, 2.0)}


def banner() -> list[str]:
    """The routes this module adds, for the startup banner."""
    return [f"  GET {MODELS}", f"  GET {MODELS}/{{model}}", f"  POST {CHAT} (OpenAI-compatible)"]


def handles(path: str) -> bool:
    """True for the paths this module serves."""
    return path in (MODELS, CHAT) or path.startswith(MODELS + "/")


def methods(path: str) -> frozenset[str]:
    """Methods allowed on one of our paths (for CORS preflights and 405s)."""
    return frozenset({"POST"}) if path == CHAT else frozenset({"GET", "HEAD"})


def error_object(status: int, message: str, code: str | None = None, param: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    """An OpenAI error body; `type` follows the status as OpenAI's API does."""
    kind = {401: "authentication_error", 403: "permission_error", 404: "invalid_request_error",
            429: "rate_limit_error"}.get(status)
    if kind is None:
        kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code, **extra}}


def answer_text(body: Any, *, json_wanted: bool = False) -> str:
    """The text of a workflow answer, by the rule in the module docstring."""
    value = body.get("data", body) if isinstance(body, dict) else body
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, dict) and not json_wanted:
        for key in ("answer", "data"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return json.dumps(value, ensure_ascii=False, default=str)


def usage_of(response: ResponseData) -> dict[str, int]:
    """Token counts when the engine reports them (a `usage` attribute of the response, else the body's
    `meta.usage`; `input_tokens`/`output_tokens` or OpenAI's names), else zeros."""
    usage = getattr(response, "usage", None)
    if not isinstance(usage, dict):
        meta = response.body.get("meta") if isinstance(response.body, dict) else None
        usage = meta.get("usage") if isinstance(meta, dict) else None
    usage = usage if isinstance(usage, dict) else {}

    def count(*names: str) -> int:
        for name in names:
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return 0

    prompt = count("input_tokens", "prompt_tokens")
    completion = count("output_tokens", "completion_tokens")
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def last_user_text(messages: list[Any]) -> str | None:
    """The text of the last user message (text parts joined by newlines), or None if there is none."""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "\n".join(str(p.get("text", "")) for p in content
                             if isinstance(p, dict) and p.get("type") == "text")
        return ""
    return None


class _Refused(HTTPError):
    """A request refused with OpenAI's error object (`code`, `param`)."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, headers)
        self.openai_code, self.param = code, param


async def handle(core: KdepsASGI, scope: Scope, receive: Receive, headers: dict[str, str], request_id: str,
                 ip: str, sender: ResponseSender) -> Outcome:
    """Answer one request to an OpenAI-compatible path; always sends the response itself."""
    path, method = scope["path"], scope["method"]
    try:
        if method not in methods(path):
            allow = ", ".join(sorted(methods(path)))
            raise _Refused(405, f"method {method} is not allowed on {path}", headers={"allow": allow})
        if not core.authorised(headers):
            raise _Refused(401, "missing or invalid API key (send it as a bearer token)", "invalid_api_key",
                           headers={"www-authenticate": "Bearer"})
        if path == CHAT:
            return await _chat(core, scope, receive, headers, request_id, ip, sender)
        await sender.whole(200, _JSON, json_bytes(_models(core, path)))
    except HTTPError as exc:
        code, param = (exc.openai_code, exc.param) if isinstance(exc, _Refused) else (None, None)
        body = error_object(exc.status, exc.message, code, param)
        await sender.whole(exc.status, {**exc.headers, **_JSON}, json_bytes(body))
    return path, None


def _model(core: KdepsASGI) -> dict[str, Any]:
    return {"id": core.model_name, "object": "model", "created": core.started, "owned_by": "kdeps"}


def _models(core: KdepsASGI, path: str) -> dict[str, Any]:
    if path == MODELS:
        return {"object": "list", "data": [_model(core)]}
    wanted = path[len(MODELS) + 1:]
    if wanted != core.model_name:
        raise _Refused(404, f"The model '{wanted}' does not exist; this server serves '{core.model_name}'",
                       "model_not_found", "model")
    return _model(core)


def _parse(raw: bytes, model_name: str) -> dict[str, Any]:
    try:
        payload = loads_json(raw) if raw else None
    except JSONTooDeep as exc:
        raise _Refused(400, f"the JSON body is nested too deeply: {exc}") from None
    except ValueError as exc:
        raise _Refused(400, f"We could not parse the JSON body of your request: {exc}") from None
    if not isinstance(payload, dict):
        raise _Refused(400, "the request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise _Refused(400, "you must provide a model parameter", "missing_required_parameter", "model")
    asked = [name for name, used in _UNSUPPORTED.items()
             if payload.get(name) is not None and used(payload[name])]
    if asked:
        raise _Refused(400, f"unsupported parameter{'s' if len(asked) > 1 else ''} for a kdeps workflow "
                            f"('{model_name}'): {', '.join(asked)}", "unsupported_parameter", asked[0])
    _check_parameters(payload)
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Refused(400, "'messages' must be a non-empty array", "invalid_value", "messages")
    if any(not isinstance(m, dict) or not isinstance(m.get("role"), str) for m in messages):
        raise _Refused(400, "each message must be an object with a 'role'", "invalid_value", "messages")
    if "stream" in payload and not isinstance(payload["stream"], bool | None):
        raise _Refused(400, "Invalid type for 'stream': expected a boolean.", "invalid_type", "stream")
    return payload


def _check_parameters(payload: dict[str, Any]) -> None:
    """OpenAI's own 400s for the sampling parameters passed on to the chat resource."""
    for name, (low, high) in _NUMBERS.items():
        value = payload.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Refused(400, f"Invalid type for '{name}': expected a decimal.", "invalid_type", name)
        if not low <= value <= high:
            raise _Refused(400, f"Invalid '{name}': must be between {low:g} and {high:g}.", "invalid_value",
                           name)
    for name in ("max_tokens", "max_completion_tokens"):
        value = payload.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise _Refused(400, f"Invalid '{name}': expected an integer of at least 1.", "invalid_value",
                           name)
    stop = payload.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
            isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop)):
        raise _Refused(400, "Invalid 'stop': expected a string or up to 4 strings.", "invalid_value", "stop")
    fmt = payload.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict)
                            or fmt.get("type") not in ("text", "json_object", "json_schema")):
        raise _Refused(400, "Invalid 'response_format': type must be text, json_object or json_schema.",
                       "invalid_value", "response_format")


async def _chat(core: KdepsASGI, scope: Scope, receive: Receive, headers: dict[str, str], request_id: str,
                ip: str, sender: ResponseSender) -> Outcome:
    payload = _parse(await core.read_body(receive, headers), core.model_name)
    question = last_user_text(payload["messages"])
    if question is None:
        raise _Refused(400, "'messages' has no message with role 'user'", "invalid_value", "messages")
    data = RequestData(method="POST", path=CHAT, route=core.openai_route or CHAT, query={},
                       body={**payload, "q": question}, headers=headers, client_ip=ip, request_id=request_id,
                       conversation=Conversation.from_openai(payload))
    include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
    answer = _OpenAIAnswer(core.model_name, data, include_usage)
    with core.slot():  # only a complete request holds a concurrency slot
        response = await core.lifecycle.serve(data, scope, receive, sender, answer,
                                              stream=bool(payload.get("stream")))
    return CHAT, response


class _OpenAIAnswer:
    """The workflow's answer as a `chat.completion`, or streamed as `chat.completion.chunk` events."""

    def __init__(self, model: str, data: RequestData, include_usage: bool) -> None:
        self.model, self.data, self.include_usage = model, data, include_usage
        self.id, self.created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        self.streamed = False  # some delta went out

    def head(self, response: ResponseData) -> tuple[int, dict[str, str]]:
        return 200, {}

    def whole(self, response: ResponseData) -> tuple[int, dict[str, str], bytes]:
        if response.status >= 400:
            return response.status, dict(_JSON), json_bytes(_failure(response))
        message = {"role": "assistant", "content": self._content(response), "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": self._finish()}
        body = {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "system_fingerprint": None, "choices": [choice],
                "usage": usage_of(response)}
        return 200, dict(_JSON), json_bytes(body)

    def opening(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def delta(self, event: dict[str, Any]) -> bytes:
        if not event.get("text"):
            return b""
        self.streamed = True
        return self._chunk({"content": str(event["text"])})

    def closing(self, response: ResponseData) -> bytes:
        if response.status >= 400:
            return sse(_failure(response))
        out = b"" if self.streamed else self._chunk({"content": self._content(response)})
        out += self._chunk({}, self._finish())
        if self.include_usage:
            out += sse({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "system_fingerprint": None, "choices": [],
                        "usage": usage_of(response)})
        return out + _DONE

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "system_fingerprint": None,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

    def _content(self, response: ResponseData) -> str:
        conversation = self.data.conversation
        return answer_text(response.body, json_wanted=bool(conversation and conversation.json_mode))

    def _finish(self) -> str:
        """The upstream model's finish reason (`stop` when no chat resource answered)."""
        return (self.data.conversation.finish_reason if self.data.conversation else "") or "stop"


def _failure(response: ResponseData) -> dict[str, Any]:
    """The workflow's error response as an OpenAI error object."""
    body = response.body
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message:
        message = answer_text(body) or f"the workflow answered with status {response.status}"
    extra = {"resource": error["resource"]} if isinstance(error, dict) and error.get("resource") else {}
    return error_object(response.status, message, "workflow_error", **extra)
