"""A strict fake of the OpenAI chat-completions API as served by openai, Azure OpenAI, mistral, together,
perplexity, groq, deepseek and an OpenAI-compatible server ("llamacpp": what llama-cpp-python's
`llama_cpp.server` was seen to do, see tests/interop). The provider facts here are written independently
of the backend code (from ../shared/providers.md), so a backend bug is not mirrored by the fake.

    with OpenAICompatFake("mistral") as fake:
        fake.say("hello")                             # next chat answer (streamed if the request asks)
        fake.call_tools(("get_weather", {"city": "Paris"}))
        fake.fail(429, "slow down", headers={"retry-after-ms": "200"})
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fakes.base import FakeServer, Recorded, Reply, error_reply, json_reply, sse, stream_reply

DEFAULT_KEY = "sk-test-0123456789"


@dataclass(frozen=True)
class Wire:
    """The facts of one provider's API that the fake enforces."""

    paths: tuple[str, ...]
    strict: bool = False  # Mistral: unknown fields → 422
    json_word: bool = False  # json_object needs the word "json" in the messages (OpenAI, DeepSeek)
    alternate: bool = False  # Perplexity: user/assistant alternate after system, last is user
    nine_char_ids: bool = False  # Mistral tool-call ids
    images: bool = True
    usage_in: str = "chunk"  # stream usage: "options" (include_usage chunk) | "x_groq" | "chunk" | "none"
    repeat_tool_fields: bool = False  # Together repeats id/name on every tool-call chunk
    keepalive: bool = False  # DeepSeek sends `: keep-alive` comments
    null_content: int = 0  # status answering an assistant turn with `content: null` (0: accepted)
    empty_assistant: bool = False  # Perplexity: an assistant turn needs non-empty content
    completion_tokens: bool = True  # `max_completion_tokens` limits the answer (llama.cpp ignores it)
    formats: tuple[str, ...] = ("text", "json_object", "json_schema")
    validation_status: int = 400  # llama.cpp answers a request that does not validate with 500


WIRES: dict[str, Wire] = {
    "openai": Wire(("/v1/chat/completions",), json_word=True, usage_in="options"),
    "mistral": Wire(("/v1/chat/completions",), strict=True, nine_char_ids=True),
    "together": Wire(("/v1/chat/completions",), repeat_tool_fields=True),
    "perplexity": Wire(("/chat/completions",), alternate=True, null_content=400, empty_assistant=True),
    "groq": Wire(("/openai/v1/chat/completions",), usage_in="x_groq"),
    "deepseek": Wire(("/chat/completions", "/v1/chat/completions"), json_word=True, images=False,
                     usage_in="options", keepalive=True),
    # llama_cpp.server 0.3: pydantic validation failures are 500s, null content is one of them; it takes
    # stream_options but sends no usage chunk; json_schema is not a response_format type it knows.
    "llamacpp": Wire(("/v1/chat/completions",), usage_in="none", null_content=500, completion_tokens=False,
                     formats=("text", "json_object"), validation_status=500),
}

# Mistral's accepted fields (chatcompletionrequest.py and the message models of its SDK).
_MISTRAL_TOP = {"model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed",
                "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "n",
                "parallel_tool_calls", "prediction", "prompt_mode", "safe_prompt", "reasoning_effort",
                "metadata", "guardrails"}
_MISTRAL_MSG = {"system": {"role", "content"}, "user": {"role", "content"},
                "assistant": {"role", "content", "tool_calls", "prefix"},
                "tool": {"role", "content", "tool_call_id", "name"}}
_ROLES = ("system", "developer", "user", "assistant", "tool")
_Call = tuple[str, dict[str, Any], str]
_NUMBERS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
_INTS = ("max_tokens", "max_completion_tokens")


class OpenAICompatFake(FakeServer):
    """Strict fake for one provider. `azure=True` serves Azure deployment URLs with `api-key` auth."""

    def __init__(self, provider: str = "openai", *, api_key: str | None = DEFAULT_KEY, azure: bool = False,
                 prefix: str = "", models: set[str] | None = None) -> None:
        super().__init__()
        self.provider = provider
        self.wire = WIRES[provider]
        self.api_key = api_key
        self.azure = azure
        self.prefix = prefix.rstrip("/")
        self.models = models  # None: any model exists

    # -- scripting ------------------------------------------------------------------------------------
    def say(self, text: str, *, usage: tuple[int, int] = (11, 7), finish: str = "stop", pieces: int = 3,
            cut_after: int | None = None, drop_done: bool = False) -> OpenAICompatFake:
        """Queue a text answer (JSON or SSE as the request asks). `cut_after` chunks → connection cut;
        `drop_done` → the stream ends cleanly but without `data: [DONE]`."""
        return self.push(lambda rec: self._answer(rec, text, [], usage, finish, pieces, cut_after, drop_done))

    def call_tools(self, *calls: tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], str],
                   text: str = "", usage: tuple[int, int] = (20, 9)) -> OpenAICompatFake:
        """Queue an answer asking for tool calls: (name, arguments[, id])."""
        ids = self._ids(len(calls))
        items = [(c[0], c[1], c[2] if len(c) > 2 else ids[i]) for i, c in enumerate(calls)]  # type: ignore[misc]
        return self.push(lambda rec: self._answer(rec, text, items, usage, "tool_calls", 2, None, False))

    def _ids(self, n: int) -> list[str]:
        if self.wire.nine_char_ids:
            return [f"Ab{i:07d}" for i in range(n)]
        return [f"call_{i}_{int(time.time() * 1000) % 100000}" for i in range(n)]

    # -- protocol -------------------------------------------------------------------------------------
    def chat_paths(self) -> tuple[str, ...]:
        if self.azure:
            return ()
        return tuple(self.prefix + p for p in self.wire.paths)

    def error_body(self, status: int, message: str, type_: str | None = None, code: Any = None) -> Any:
        if self.azure:
            return {"error": {"code": str(code or status), "message": message}}
        if self.provider == "mistral":
            return {"object": "error", "message": message, "type": type_ or _error_type(status),
                    "param": None, "code": code}
        return {"error": {"message": message, "type": type_ or _error_type(status), "param": None,
                          "code": code}}

    def _err(self, status: int, message: str, type_: str | None = None, code: Any = None) -> Reply:
        return error_reply(status, self.error_body(status, message, type_, code))

    def default(self, rec: Recorded) -> Reply:
        return self._answer(rec, "ok", [], (5, 1), "stop", 1, None, False)

    def validate(self, rec: Recorded) -> Reply | None:
        if not self._path_ok(rec):
            if self.azure:
                return self._err(404, "Resource not found", code="404")
            return self._err(404, f"Invalid URL ({rec.method} {rec.path})", code="unknown_url")
        if rec.method != "POST":
            return self._err(405, "Method not allowed")
        auth = self._auth(rec)
        if auth is not None:
            return auth
        body = rec.json
        if not isinstance(body, dict):
            return self._err(400, "We could not parse the JSON body of your request.")
        if self.wire.strict:
            problem = self._mistral_strict(body)
            if problem is not None:
                return problem
        return self._check_body(body)

    def _path_ok(self, rec: Recorded) -> bool:
        if not self.azure:
            return rec.path in self.chat_paths()
        if rec.path == self.prefix + "/openai/v1/chat/completions":
            return True
        m = re.fullmatch(re.escape(self.prefix) + r"/openai/deployments/([^/]+)/chat/completions", rec.path)
        return bool(m) and "api-version" in rec.query

    def _auth(self, rec: Recorded) -> Reply | None:
        if self.api_key is None:
            return None
        if self.azure:
            key = rec.header("api-key")
            if key != self.api_key:
                return self._err(401, "Access denied due to invalid subscription key or wrong API endpoint. "
                                      "Make sure to provide a valid key for an active subscription and use "
                                      "a correct regional API endpoint for your resource.", code="401")
            return None
        header = rec.header("authorization")
        if header is None:
            if self.provider == "mistral":
                return error_reply(401, {"message": "Unauthorized", "request_id": "req_fake"})
            return self._err(401, "You didn't provide an API key. You need to provide your API key in "
                                  "an Authorization header using Bearer auth.", "invalid_request_error")
        if header != f"Bearer {self.api_key}":
            if self.provider == "mistral":
                return error_reply(401, {"message": "Unauthorized", "request_id": "req_fake"})
            return self._err(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return None

    def _mistral_strict(self, body: dict[str, Any]) -> Reply | None:
        detail = [{"type": "extra_forbidden", "loc": ["body", k], "msg": "Extra inputs are not permitted",
                   "input": body[k]} for k in body if k not in _MISTRAL_TOP]
        for i, m in enumerate(body.get("messages") or []):
            if isinstance(m, dict):
                allowed = _MISTRAL_MSG.get(str(m.get("role")), set())
                detail += [{"type": "extra_forbidden", "loc": ["body", "messages", i, m.get("role"), k],
                            "msg": "Extra inputs are not permitted", "input": m[k]}
                           for k in m if k not in allowed]
        if detail:
            return error_reply(422, {"object": "error", "message": {"detail": detail},
                                     "type": "invalid_request_error", "param": None, "code": None})
        return None

    def _check_body(self, body: dict[str, Any]) -> Reply | None:
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            return self._err(400, "you must provide a model parameter", code="missing_required_parameter")
        if not isinstance(messages, list) or not messages:
            return self._err(400, "[] is too short - 'messages'")
        for key in _NUMBERS:
            if key in body and (not isinstance(body[key], int | float) or isinstance(body[key], bool)):
                return self._err(400, f"Invalid type for '{key}': expected a decimal.", code="invalid_type")
        for key in _INTS:
            if key in body and (not isinstance(body[key], int) or isinstance(body[key], bool)):
                return self._err(400, f"Invalid type for '{key}': expected an integer.", code="invalid_type")
        if "stream" in body and not isinstance(body["stream"], bool):
            return self._err(400, "Invalid type for 'stream': expected a boolean.", code="invalid_type")
        if "stream_options" in body and not body.get("stream"):
            return self._err(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
        problem = self._check_messages(messages)
        if problem is not None:
            return problem
        problem = self._check_tools(body.get("tools"))
        if problem is not None:
            return problem
        fmt = body.get("response_format")
        if fmt is not None:
            if not isinstance(fmt, dict) or fmt.get("type") not in self.wire.formats:
                status = self.wire.validation_status
                prefix = "1 validation error: " if status >= 500 else ""
                return self._err(status, f"{prefix}Invalid value for 'response_format'.")
            if (fmt["type"] == "json_object" and self.wire.json_word
                    and "json" not in json.dumps(messages).lower()):
                return self._err(400, "'messages' must contain the word 'json' in some form, to use "
                                      "'response_format' of type 'json_object'.")
        if self.models is not None and model not in self.models:
            return self._err(404, f"The model `{model}` does not exist or you do not have access to it.",
                             "invalid_request_error", "model_not_found")
        return None

    def _check_messages(self, messages: list[Any]) -> Reply | None:
        open_calls: set[str] = set()
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in _ROLES:
                return self._err(400, f"Invalid value for 'messages[{i}].role'.")
            content = m.get("content")
            if isinstance(content, list):
                for part in content:
                    if not isinstance(part, dict) or part.get("type") not in ("text", "image_url"):
                        return self._err(400, f"Invalid content part in messages[{i}].")
                    if part["type"] == "image_url":
                        problem = self._check_image(i, part)
                        if problem is not None:
                            return problem
            elif content is None:
                if self.wire.null_content == 500:
                    return self._err(500, "1 validation error:\n  {'type': 'string_type', 'loc': ('body', "
                                          f"'messages', {i}, 'ChatCompletionRequestAssistantMessage', "
                                          "'content'), 'msg': 'Input should be a valid string'}",
                                     "internal_server_error")
                if self.wire.null_content or not (m["role"] == "assistant" and m.get("tool_calls")):
                    return self._err(400, f"Invalid value for 'messages[{i}].content': expected a string.")
            elif not isinstance(content, str):
                return self._err(400, f"Invalid type for 'messages[{i}].content'.")
            elif self.wire.empty_assistant and m["role"] == "assistant" and not content.strip():
                return self._err(400, "Assistant messages must have content.", "invalid_message", 400)
            if m["role"] == "assistant":
                open_calls = set()
                for call in m.get("tool_calls") or []:
                    cid = call.get("id") if isinstance(call, dict) else None
                    fn = call.get("function") if isinstance(call, dict) else None
                    if not isinstance(cid, str) or not isinstance(fn, dict) or not isinstance(
                            fn.get("arguments"), str):
                        return self._err(400, f"Invalid tool call in messages[{i}].")
                    if self.wire.nine_char_ids and not re.fullmatch(r"[A-Za-z0-9]{9}", cid):
                        return self._err(400, f"Tool call id was {cid} but must be a-z, A-Z, 0-9, with a "
                                              "length of 9.")
                    open_calls.add(cid)
            elif m["role"] == "tool" and m.get("tool_call_id") not in open_calls:
                return self._err(400, "Invalid parameter: messages with role 'tool' must be a response "
                                      "to a preceeding message with 'tool_calls'.")
        if self.wire.alternate:
            return self._check_alternation(messages)
        return None

    def _check_image(self, i: int, part: dict[str, Any]) -> Reply | None:
        if not self.wire.images:
            return self._err(400, f"Failed to deserialize the JSON body into the target type: messages[{i}]: "
                                  "unknown variant `image_url`, expected `text`")
        url = (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else None
        m = re.fullmatch(r"data:(image/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/=]+)", url or "")
        if not m:
            return self._err(400, f"Invalid image URL in messages[{i}]: expected a data URL.")
        try:
            base64.b64decode(m.group(2), validate=True)
        except ValueError:
            return self._err(400, "Invalid base64 image data.")
        return None

    def _check_alternation(self, messages: list[dict[str, Any]]) -> Reply | None:
        rest = [m for m in messages if m["role"] != "system"]
        if any(m["role"] == "tool" for m in rest):
            return None
        for a, b in itertools.pairwise(rest):
            if a["role"] == b["role"]:
                return self._err(400, "After the (optional) system message(s), user and assistant roles "
                                      "should be alternating.", "invalid_message", 400)
        if not rest or rest[-1]["role"] != "user":
            return self._err(400, "Last message must have role `user` or `tool`.", "invalid_message", 400)
        return None

    def _check_tools(self, tools: Any) -> Reply | None:
        if tools is None:
            return None
        if not isinstance(tools, list):
            return self._err(400, "Invalid type for 'tools': expected an array.")
        for i, t in enumerate(tools):
            fn = t.get("function") if isinstance(t, dict) else None
            if t.get("type") != "function" or not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                return self._err(400, f"Missing required parameter: 'tools[{i}].function'.")
            if "parameters" in fn and not isinstance(fn["parameters"], dict):
                return self._err(400, f"Invalid type for 'tools[{i}].function.parameters'.")
        return None

    # -- answers --------------------------------------------------------------------------------------
    def _answer(self, rec: Recorded, text: str, calls: list[tuple[str, dict[str, Any], str]],
                usage: tuple[int, int], finish: str, pieces: int, cut_after: int | None,
                drop_done: bool) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        model = body.get("model", "model")
        limit = body.get("max_tokens")
        if self.wire.completion_tokens and body.get("max_completion_tokens") is not None:
            limit = body["max_completion_tokens"]
        words = text.split(" ")
        if isinstance(limit, int) and not calls and len(words) > limit:  # one word stands for one token
            text, finish, usage = " ".join(words[:limit]), "length", (usage[0], limit)
        if body.get("stream"):
            return self._stream(body, model, text, calls, usage, finish, pieces, cut_after, drop_done)
        message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
        if calls:
            message["tool_calls"] = [{"id": cid, "type": "function",
                                      "function": {"name": name, "arguments": json.dumps(args)}}
                                     for name, args, cid in calls]
        return json_reply({"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                           "model": model,
                           "choices": [{"index": 0, "message": message, "logprobs": None,
                                        "finish_reason": finish}],
                           "usage": _usage(usage)})

    def _stream(self, body: dict[str, Any], model: str, text: str, calls: list[_Call],
                usage: tuple[int, int], finish: str, pieces: int, cut_after: int | None,
                drop_done: bool) -> Reply:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
            return sse({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
                        "model": model, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                     "finish_reason": finish_reason}], **extra})

        events = [chunk({"role": "assistant", "content": ""})]
        if self.wire.keepalive:
            events.append(": keep-alive\n\n")
        for piece in _split(text, pieces):
            events.append(chunk({"content": piece}))
        for index, (name, args, cid) in enumerate(calls):
            raw = json.dumps(args)
            half = len(raw) // 2
            events.append(chunk({"tool_calls": [{"index": index, "id": cid, "type": "function",
                                                 "function": {"name": name, "arguments": raw[:half]}}]}))
            rest: dict[str, Any] = {"index": index, "function": {"arguments": raw[half:]}}
            if self.wire.repeat_tool_fields:
                rest = {"index": index, "id": cid, "type": "function",
                        "function": {"name": name, "arguments": raw[half:]}}
            events.append(chunk({"tool_calls": [rest]}))
        if self.wire.usage_in == "x_groq":
            events.append(chunk({}, finish, x_groq={"id": "req_fake", "usage": _usage(usage)}))
        elif self.wire.usage_in == "options":
            events.append(chunk({}, finish))
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append(sse({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
                                   "model": model, "choices": [], "usage": _usage(usage)}))
        elif self.wire.usage_in == "none":
            events.append(chunk({}, finish))
        else:
            events.append(chunk({}, finish, usage=_usage(usage)))
        if not drop_done:
            events.append("data: [DONE]\n\n")
        return stream_reply(events, cut_after=cut_after)


def _error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_exceeded"
    return "server_error" if status >= 500 else "invalid_request_error"


def _usage(usage: tuple[int, int]) -> dict[str, int]:
    return {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}


def _split(text: str, pieces: int) -> list[str]:
    if not text:
        return []
    size = max(1, -(-len(text) // max(1, pieces)))
    return [text[i:i + size] for i in range(0, len(text), size)]


def chat_stream(pieces: list[str], delay: float = 0.0) -> Reply:
    """An OpenAI chat stream of `pieces` (a role chunk, one chunk per piece, a stop chunk, [DONE]),
    sent `delay` seconds apart: push it to answer the next request whether it asked for a stream or not."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return sse({"id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": 1,
                    "model": "gpt-4o",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

    events = [chunk({"role": "assistant", "content": ""}), *(chunk({"content": p}) for p in pieces),
              chunk({}, "stop"), "data: [DONE]\n\n"]
    return stream_reply(events, chunk_delay=delay)


def serve(provider: str = "openai", **kwargs: Any) -> Iterator[OpenAICompatFake]:
    """Generator body for a pytest fixture: ``yield from serve("groq")``."""
    with OpenAICompatFake(provider, **kwargs) as fake:
        yield fake


def serve_in_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAICompatFake]:
    """Generator body for a fixture: an OpenAI fake whose URL and key agents read from the environment
    (`FAKE_URL`, `OPENAI_API_KEY`)."""
    with OpenAICompatFake("openai") as fake:
        monkeypatch.setenv("FAKE_URL", fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", DEFAULT_KEY)
        yield fake


@pytest.fixture
def openai_fake() -> Iterator[OpenAICompatFake]:
    yield from serve("openai")
