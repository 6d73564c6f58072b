"""The OpenAI chat-completions wire format, shared by openai (and Azure OpenAI, and any compatible server
behind `baseUrl`), mistral, together, perplexity, groq and deepseek. Provider differences are data
(:class:`Provider`); the translation is written once.

URL rule (``baseUrl`` may carry a path prefix):

1. a base that already ends in ``/chat/completions`` is used as is;
2. a base whose path ends with the provider's version prefix (``/v1``; ``/openai/v1`` for Groq), or whose
   last segment is any version (``/v1``, ``/v1beta``, ``/v4`` — the OpenAI SDK convention of putting the
   version in the base URL), gets ``/chat/completions``;
3. anything else (a bare host, or a proxy prefix such as ``https://gw.example.com/llm``) gets the
   provider's full path (``/v1/chat/completions`` for OpenAI).

Azure OpenAI is detected by the host (``*.openai.azure.com`` / ``*.cognitiveservices.azure.com``) or by
a ``/openai/deployments/`` path (Azure behind a gateway): auth goes in an ``api-key`` header. A deployment
URL (``…/openai/deployments/<name>``) gets ``/chat/completions?api-version=2024-10-21`` (the latest GA
version of the dated data-plane API; an ``api-version`` in the base URL's query wins). A bare resource URL
uses the model as the deployment name, as the OpenAI SDK does; a base ending in ``/openai/v1`` (Azure's
versionless v1 API) gets ``/chat/completions`` and no api-version.

Any OpenAI-compatible server (vLLM, llama.cpp, LM Studio, LocalAI, Ollama's ``/v1``, gateways) is the
``openai`` backend with a ``baseUrl`` on another host: it gets the :data:`COMPATIBLE` profile, which sends
``max_tokens`` (what every such server reads; ``max_completion_tokens`` only for model families that
require it, see :data:`COMPLETION_TOKENS_MODELS`) and asks for usage in the stream.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from kdeps.llm.backends.base import Backend, HttpCall, StreamParser, sampling, stream_json, tool_arguments
from kdeps.llm.catalog import BY_NAME
from kdeps.llm.errors import InvalidResponseError, UpstreamError
from kdeps.llm.types import ChatRequest, ChatResult, Endpoint, Message, StreamDelta, ToolCall, Usage

AZURE_API_VERSION = "2024-10-21"
_SAMPLING = {"temperature": "temperature", "top_p": "top_p", "frequency_penalty": "frequency_penalty",
             "presence_penalty": "presence_penalty", "stop": "stop"}
_AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com")
_CHAT = "/chat/completions"
_VERSION_SEGMENT = re.compile(r"^v\d+[a-z0-9]*$")
_MISTRAL_ID = re.compile(r"^[A-Za-z0-9]{9}$")
_ALNUM = string.ascii_letters + string.digits
_THINK = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Provider:
    """What differs between OpenAI-compatible providers."""

    path: str = "/v1/chat/completions"
    max_tokens_field: str = "max_tokens"
    stream_options: bool = False  # ask for usage in the last chunk via stream_options.include_usage
    requires_done: bool = True  # the stream must end with `data: [DONE]`
    message_names: bool = False  # `name` allowed on user/assistant/system messages
    json_schema: bool = True  # native response_format json_schema
    json_object: bool = True  # native response_format json_object
    bare_schema: bool = False  # Perplexity: json_schema carries only `schema` (no name)
    nine_char_tool_ids: bool = False  # Mistral: tool-call ids are exactly 9 alphanumerics
    alternate: bool = False  # Perplexity: user/assistant alternate after system, last is user
    strip_think: bool = False  # reasoning models prepend <think>…</think> to the content
    tool_turn_text: str = ""  # content of an assistant turn that only calls tools ({names} = the tools)


COMPATIBLE = Provider(stream_options=True)
"""The profile of an unknown OpenAI-compatible server: only the fields every such server reads."""

COMPLETION_TOKENS_MODELS = re.compile(r"^(?:[\w.-]+/)?(?:o\d|gpt-5)", re.IGNORECASE)
"""Models that refuse `max_tokens` and need `max_completion_tokens` (OpenAI's reasoning families), also
when reached through a compatible gateway."""


@lru_cache(maxsize=256)
def _host_path(base_url: str) -> tuple[str, str]:
    parts = urlsplit(base_url.strip())
    return (parts.hostname or "").lower(), parts.path


@lru_cache(maxsize=256)
def _chat_url(provider_path: str, base: str, model: str) -> tuple[str, tuple[tuple[str, str], ...], bool]:
    """The chat URL, its query and whether it is Azure, for a base URL (see the module's URL rule);
    cached: the same few bases and models come back on every request."""
    parts = urlsplit(base.strip())
    path = parts.path.rstrip("/")
    query = dict(parse_qsl(parts.query))
    host = (parts.hostname or "").lower()
    azure = host.endswith(_AZURE_HOSTS) or "/openai/deployments/" in path + "/"
    if azure:
        if path.endswith(_CHAT):
            path = path[: -len(_CHAT)]
        if path.endswith("/openai/v1"):
            pass
        else:
            if "/deployments/" not in path:
                path = f"{path}/openai/deployments/{model}"
            query.setdefault("api-version", AZURE_API_VERSION)
        path += _CHAT
    elif not path.endswith(_CHAT):
        prefix = provider_path[: -len(_CHAT)]
        last = path.rsplit("/", 1)[-1]
        if (prefix and path.endswith(prefix)) or _VERSION_SEGMENT.match(last):
            path += _CHAT
        else:
            path += provider_path
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), tuple(query.items()), azure


class OpenAICompatBackend(Backend):
    """One OpenAI-compatible provider; subclasses only set the class attributes."""

    provider: ClassVar[Provider] = Provider()
    own_hosts: ClassVar[tuple[str, ...]] = ()
    """Hosts that are this provider itself; any other `baseUrl` host gets `foreign` (when set)."""
    foreign: ClassVar[Provider | None] = None

    def profile(self, base_url: str) -> Provider:
        """The provider profile for a base URL: the provider's own, or the compatible-server one."""
        if self.foreign is None:
            return self.provider
        host, path = _host_path(base_url)
        if host in self.own_hosts or host.endswith(_AZURE_HOSTS) or "/openai/deployments/" in path:
            return self.provider
        return self.foreign

    # -- request --------------------------------------------------------------------------------------
    def build(self, request: ChatRequest, endpoint: Endpoint, *, stream: bool = False) -> HttpCall:
        base = endpoint.base_url or self.default_base_url
        p = self.profile(base)
        url, params, azure = self._url(base, request.model)
        headers = {"Content-Type": "application/json",
                   "Accept": "text/event-stream" if stream else "application/json"}
        if endpoint.api_key:
            if azure:
                headers["api-key"] = endpoint.api_key
            else:
                headers["Authorization"] = f"Bearer {endpoint.api_key}"

        body: dict[str, Any] = {"model": request.model, "messages": self._messages(request, p)}
        body.update(sampling(request, _SAMPLING))
        if request.max_tokens is not None:
            field = p.max_tokens_field
            if COMPLETION_TOKENS_MODELS.match(request.model) and p.max_tokens_field == "max_tokens" and \
                    p is self.foreign:
                field = "max_completion_tokens"
            body[field] = request.max_tokens
        if request.json_mode or request.json_schema is not None:
            fmt = self._response_format(request, p)
            if fmt is not None:
                body["response_format"] = fmt
        if request.tools:
            body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                               "parameters": t.parameters}}
                             for t in request.tools]
        if stream:
            body["stream"] = True
            if p.stream_options:
                body["stream_options"] = {"include_usage": True}
        return HttpCall(url, headers, body, params)

    def _url(self, base: str, model: str) -> tuple[str, dict[str, str], bool]:
        url, query, azure = _chat_url(self.provider.path, base, model)
        return url, dict(query), azure

    def _response_format(self, request: ChatRequest, p: Provider) -> dict[str, Any] | None:
        schema = request.json_schema
        if schema is None and not p.json_object and p.json_schema:
            # No json_object mode (Perplexity): a generic object schema still makes the server enforce JSON.
            schema = {"type": "object"}
            if request.json_keys:
                schema = {"type": "object", "properties": {k: {} for k in request.json_keys},
                          "required": list(request.json_keys)}
        if schema is not None and p.json_schema:
            if p.bare_schema:
                return {"type": "json_schema", "json_schema": {"schema": schema}}
            return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
        if p.json_object:
            return {"type": "json_object"}
        return None  # JSON asked for through the instruction only

    def _messages(self, request: ChatRequest, p: Provider) -> list[dict[str, Any]]:
        system = request.system
        if (request.json_mode or request.json_schema is not None) and not _mentions_json(request):
            # OpenAI and DeepSeek answer 400 unless the word "json" appears in the messages.
            system = f"{system}\n\nRespond with a JSON object." if system else "Respond with a JSON object."
        out: list[dict[str, Any]] = []
        if system:
            out.append({"role": "system", "content": system})
        for m in request.messages:
            out.append(self._message(m, p))
        if p.alternate:
            out = _alternate(out)
        return out

    def _message(self, m: Message, p: Provider) -> dict[str, Any]:
        if m.role == "tool":
            content = m.content
            if m.is_error and not content.lower().startswith("error"):
                content = f"Error: {content}"
            return {"role": "tool", "tool_call_id": self._wire_id(m.tool_call_id or ""), "content": content}
        msg: dict[str, Any] = {"role": m.role}
        if m.images and m.role == "user":
            parts: list[dict[str, Any]] = []
            if m.content:
                parts.append({"type": "text", "text": m.content})
            for img in m.images:
                url = f"data:{img.mime};base64,{base64.b64encode(img.data).decode()}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
            msg["content"] = parts
        else:
            msg["content"] = m.content
        if m.role == "assistant" and m.tool_calls:
            if not m.content:
                # Never null: llama.cpp-style servers answer 500 to it, Perplexity wants text.
                names = ", ".join(c.name for c in m.tool_calls)
                msg["content"] = p.tool_turn_text.format(names=names)
            msg["tool_calls"] = [{"id": self._wire_id(c.id), "type": "function",
                                  "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                                 for c in m.tool_calls]
        if m.name and p.message_names:
            msg["name"] = m.name
        return msg

    def _wire_id(self, call_id: str) -> str:
        if not self.provider.nine_char_tool_ids or _MISTRAL_ID.match(call_id):
            return call_id
        # Deterministic, so a call and its result map to the same 9-character id.
        digest = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:12], "big")
        chars = []
        for _ in range(9):
            digest, i = divmod(digest, len(_ALNUM))
            chars.append(_ALNUM[i])
        return "".join(chars)

    def _new_id(self) -> str:
        if self.provider.nine_char_tool_ids:
            return "".join(secrets.choice(_ALNUM) for _ in range(9))
        return "call_" + secrets.token_hex(12)

    # -- response -------------------------------------------------------------------------------------
    def parse(self, data: Any) -> ChatResult:
        if not isinstance(data, dict):
            raise InvalidResponseError(self.name, f"expected a JSON object, got {type(data).__name__}")
        if data.get("error"):
            raise InvalidResponseError(self.name, self.error_message(200, data, ""))
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise InvalidResponseError(self.name, "the answer has no choices")
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise InvalidResponseError(self.name, "the answer's choice has no message")
        text = _content_text(message.get("content"))
        if self.provider.strip_think:
            text = _THINK.sub("", text, count=1)
        calls = [self._tool_call(i, c) for i, c in enumerate(message.get("tool_calls") or [])]
        return ChatResult(text=text, tool_calls=calls, finish_reason=choice.get("finish_reason") or "",
                          usage=_usage(data.get("usage")), model=data.get("model") or "",
                          backend=self.name)

    def _tool_call(self, index: int, call: Any) -> ToolCall:
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            raise InvalidResponseError(self.name, f"tool call #{index} has no function")
        fn = call["function"]
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidResponseError(self.name, f"tool call #{index} has no function name")
        args = tool_arguments(self.name, name, fn.get("arguments"))
        return ToolCall(id=str(call.get("id") or self._new_id()), name=name, arguments=args)

    def error_message(self, status: int, data: Any, text: str) -> str:
        if isinstance(data, dict):
            # Mistral 422: {"object":"error","message":{"detail":[…]}}; FastAPI-style {"detail": […]}
            nested = data.get("message")
            detail = nested.get("detail") if isinstance(nested, dict) else data.get("detail")
            if detail is not None and not data.get("error"):
                return _detail_text(detail)
        return super().error_message(status, data, text)

    def stream_parser(self) -> StreamParser:
        return OpenAIStreamParser(self)


class OpenAIStreamParser(StreamParser):
    """Assembles `chat.completion.chunk` events: text deltas as they come, then one final delta with the
    tool calls (fragments joined by index), usage and finish reason."""

    def __init__(self, backend: OpenAICompatBackend) -> None:
        self.backend = backend
        self._done = False
        self._finished = False
        self._finish_reason = ""
        self._usage: Usage | None = None
        self._calls: dict[int, dict[str, Any]] = {}
        self._think_buffer: str | None = "" if backend.provider.strip_think else None

    def feed(self, event: str | None, data: str) -> list[StreamDelta]:
        data = data.strip()
        if not data or data.startswith(":") or self._finished:
            return []
        if data == "[DONE]":
            self._done = True
            return self._final()
        chunk = stream_json(self.backend.name, data)
        if chunk.get("error"):
            raise UpstreamError(self.backend.name, self.backend.error_message(0, chunk, data))
        usage = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")
        if isinstance(usage, dict):
            self._usage = _usage(usage)
        out: list[StreamDelta] = []
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = _content_text(delta.get("content"))
            if text:
                text = self._strip(text)
                if text:
                    out.append(StreamDelta(text=text))
            for frag in delta.get("tool_calls") or []:
                self._merge_call(frag)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return out

    def _strip(self, text: str) -> str:
        """Hold back a leading <think>…</think> block (Perplexity reasoning models) and drop it."""
        if self._think_buffer is None:
            return text
        self._think_buffer += text
        head = self._think_buffer.lstrip()
        if len(head) < len("<think>") and "<think>".startswith(head):
            return ""  # cannot tell yet
        if head.startswith("<think>"):
            end = head.find("</think>")
            if end < 0:
                return ""
            rest = head[end + len("</think>"):].lstrip()
        else:
            rest = self._think_buffer
        self._think_buffer = None
        return rest

    def _merge_call(self, frag: Any) -> None:
        if not isinstance(frag, dict):
            return
        index = int(frag.get("index", len(self._calls)))
        slot = self._calls.setdefault(index, {"id": "", "name": "", "args": ""})
        if frag.get("id") and not slot["id"]:
            slot["id"] = frag["id"]
        fn = frag.get("function") or {}
        if fn.get("name") and not slot["name"]:
            slot["name"] = fn["name"]
        args = fn.get("arguments")
        if isinstance(args, dict):  # Mistral may send the arguments as an object
            slot["args"] = json.dumps(args)
        elif args:
            slot["args"] += args

    def _final(self) -> list[StreamDelta]:
        self._finished = True
        calls = []
        for index in sorted(self._calls):
            slot = self._calls[index]
            if not slot["name"]:
                raise InvalidResponseError(self.backend.name, f"streamed tool call #{index} has no name")
            calls.append(ToolCall(id=slot["id"] or self.backend._new_id(), name=slot["name"],
                                  arguments=tool_arguments(self.backend.name, slot["name"], slot["args"])))
        tail = self._think_buffer or ""
        if tail.lstrip().startswith("<think>"):
            tail = ""  # an unfinished reasoning block is not part of the answer
        deltas = [StreamDelta(text=tail)] if tail else []
        deltas.append(StreamDelta(tool_calls=calls, usage=self._usage or Usage(),
                                  finish_reason=self._finish_reason))
        return deltas

    def done(self) -> bool:
        return self._done

    def finish(self) -> list[StreamDelta]:
        if self._finished:
            return []
        if self.backend.provider.requires_done or not self._finish_reason:
            raise InvalidResponseError(self.backend.name, "stream cut: the connection closed before the end "
                                                          "of the answer")
        return self._final()


# -- helpers ---------------------------------------------------------------------------------------------
def _mentions_json(request: ChatRequest) -> bool:
    texts = [request.system or ""] + [m.content for m in request.messages]
    return any("json" in t.lower() for t in texts)


def _alternate(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge consecutive same-role turns (system included), as Perplexity requires alternation."""
    out: list[dict[str, Any]] = []
    for m in messages:
        prev = out[-1] if out else None
        if (prev is not None and prev["role"] == m["role"] and m["role"] in ("system", "user", "assistant")
                and "tool_calls" not in prev and "tool_calls" not in m):
            prev["content"] = _join_content(prev["content"], m["content"])
        else:
            out.append(dict(m))
    return out


def _join_content(a: Any, b: Any) -> Any:
    if isinstance(a, str) and isinstance(b, str):
        return f"{a}\n\n{b}" if a and b else a or b
    parts_a = a if isinstance(a, list) else ([{"type": "text", "text": a}] if a else [])
    parts_b = b if isinstance(b, list) else ([{"type": "text", "text": b}] if b else [])
    return parts_a + parts_b


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts (Mistral reasoning models): keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


def _usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    return Usage(input_tokens=int(data.get("prompt_tokens") or 0),
                 output_tokens=int(data.get("completion_tokens") or 0))


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):
        items = []
        for d in detail:
            if isinstance(d, dict):
                loc = ".".join(str(x) for x in d.get("loc") or [] if x != "body")
                items.append(f"{loc}: {d.get('msg', '')}" if loc else str(d.get("msg", d)))
            else:
                items.append(str(d))
        return "; ".join(items) or "invalid request"
    return str(detail)


# -- the providers ---------------------------------------------------------------------------------------
class OpenAIBackend(OpenAICompatBackend):
    declaration = BY_NAME["openai"]
    provider = Provider(max_tokens_field="max_completion_tokens", stream_options=True, message_names=True)
    own_hosts = ("api.openai.com",)
    foreign = COMPATIBLE


class MistralBackend(OpenAICompatBackend):
    declaration = BY_NAME["mistral"]
    provider = Provider(nine_char_tool_ids=True)


class TogetherBackend(OpenAICompatBackend):
    declaration = BY_NAME["together"]
    provider = Provider()


class PerplexityBackend(OpenAICompatBackend):
    declaration = BY_NAME["perplexity"]
    provider = Provider(path="/chat/completions", requires_done=False, json_object=False, bare_schema=True,
                        alternate=True, strip_think=True, tool_turn_text="Calling {names}.")


class GroqBackend(OpenAICompatBackend):
    declaration = BY_NAME["groq"]
    provider = Provider(path="/openai/v1/chat/completions")


class DeepSeekBackend(OpenAICompatBackend):
    declaration = BY_NAME["deepseek"]
    provider = Provider(path="/chat/completions", stream_options=True, json_schema=False)


BACKENDS: dict[str, type[OpenAICompatBackend]] = {
    b.name: b for b in (OpenAIBackend, MistralBackend, TogetherBackend, PerplexityBackend, GroqBackend,
                        DeepSeekBackend)
}
