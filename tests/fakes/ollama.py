"""A strict fake Ollama server: `/api/chat` (streams NDJSON unless `"stream": false`), `/api/tags`,
`/api/show`, streamed `/api/pull` progress, `/api/version`, and 404 for a model it does not have.

    with OllamaFake(models={"llama3.2:1b"}) as fake:
        fake.say("hello")
        fake.call_tools(("get_weather", {"city": "Paris"}))
        fake.fail(404, 'model "x" not found, try pulling it first')
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.base import FakeServer, Recorded, Reply, json_reply, ndjson, stream_reply, text_reply


def _err(status: int, message: str) -> Reply:
    return json_reply({"error": message}, status)


_GO = "json: cannot unmarshal into Go struct field "
_ROLES = ("system", "user", "assistant", "tool")
_NUMERIC_OPTIONS = ("temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty",
                    "repeat_penalty")
_INT_OPTIONS = ("num_ctx", "num_predict", "seed", "num_batch", "num_gpu", "num_thread", "repeat_last_n")


class OllamaFake(FakeServer):
    def __init__(self, models: set[str] | None = None) -> None:
        super().__init__()
        self.models: set[str] = set(models) if models is not None else {"llama3.2:1b", "llama3.2:latest"}

    def has(self, model: str) -> bool:
        return model in self.models or (":" not in model and f"{model}:latest" in self.models)

    # -- scripting ------------------------------------------------------------------------------------
    def say(self, text: str, *, usage: tuple[int, int] = (12, 6), done_reason: str = "stop", pieces: int = 3,
            cut_after: int | None = None) -> OllamaFake:
        return self.push(lambda rec: self._answer(rec, text, [], usage, done_reason, pieces, cut_after))

    def call_tools(self, *calls: tuple[str, dict[str, Any]], usage: tuple[int, int] = (20, 9)) -> OllamaFake:
        return self.push(lambda rec: self._answer(rec, "", list(calls), usage, "stop", 1, None))

    def error_body(self, status: int, message: str) -> Any:
        return {"error": message}

    # -- protocol -------------------------------------------------------------------------------------
    def validate(self, rec: Recorded) -> Reply | None:
        routes = {"/api/chat": "POST", "/api/tags": "GET", "/api/show": "POST", "/api/pull": "POST",
                  "/api/version": "GET", "/": "GET"}
        if rec.path not in routes:
            return text_reply("404 page not found", 404)
        if rec.method != routes[rec.path] and not (rec.path == "/" and rec.method == "HEAD"):
            return text_reply("405 method not allowed", 405)
        if rec.method == "GET":
            return None
        body = rec.json
        if not isinstance(body, dict):
            return _err(400, "invalid character in request body")
        if rec.path == "/api/chat":
            return self._check_chat(body)
        if rec.path == "/api/show":
            model = body.get("model") or body.get("name")
            if not model:
                return _err(400, "model is required")
            if not self.has(model):
                return _err(404, f"model '{model}' not found")
        if rec.path == "/api/pull" and not (body.get("model") or body.get("name")):
            return _err(400, "model is required")
        return None

    def _check_chat(self, body: dict[str, Any]) -> Reply | None:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _err(400, "model is required")
        messages = body.get("messages", [])
        if not isinstance(messages, list):
            return _err(400, _GO + "ChatRequest.messages")
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in _ROLES:
                return _err(400, f"invalid role: {m.get('role') if isinstance(m, dict) else m}")
            if not isinstance(m.get("content", ""), str):
                return _err(400, "json: cannot unmarshal array into Go struct field "
                                                  "Message.messages.content of type string")
            for img in m.get("images") or []:
                try:
                    base64.b64decode(img, validate=True)
                except (binascii.Error, TypeError, ValueError):
                    return _err(400, "illegal base64 data at input byte 4")
            for call in m.get("tool_calls") or []:
                args = (call.get("function") or {}).get("arguments") if isinstance(call, dict) else None
                if not isinstance(args, dict):
                    return _err(400, "json: cannot unmarshal string into Go struct field "
                                                      "ToolCallFunction.messages.tool_calls.function.arguments"
                                                      " of type api.ToolCallFunctionArguments")
        fmt = body.get("format")
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            return _err(500, 'invalid format: expected "json" or a valid JSON Schema object')
        options = body.get("options", {})
        if not isinstance(options, dict):
            return _err(400, _GO + "ChatRequest.options")
        for key in _NUMERIC_OPTIONS:
            value = options.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return _err(400, f"option {key!r} must be of type number")
        for key in _INT_OPTIONS:
            if key in options and (isinstance(options[key], bool) or not isinstance(options[key], int)):
                return _err(400, f"option {key!r} must be of type integer")
        if "stream" in body and not isinstance(body["stream"], bool):
            return _err(400, _GO + "ChatRequest.stream")
        if not self.has(model):
            return _err(404, f'model "{model}" not found, try pulling it first')
        return None

    def route(self, rec: Recorded) -> Reply | None:
        if rec.path == "/":
            return text_reply("Ollama is running")
        if rec.path == "/api/version":
            return json_reply({"version": "0.12.3"})
        if rec.path == "/api/tags":
            return json_reply({"models": [_model_entry(m) for m in sorted(self.models)]})
        body = rec.json
        if rec.path == "/api/show":
            return json_reply({"modelfile": "# fake", "parameters": "", "template": "{{ .Prompt }}",
                               "details": _model_entry(body.get("model") or body["name"])["details"],
                               "model_info": {"general.architecture": "llama"},
                               "capabilities": ["completion", "tools"]})
        if rec.path == "/api/pull":
            return self._pull(body)
        return None

    def _pull(self, body: dict[str, Any]) -> Reply:
        name = body.get("model") or body.get("name")
        total = 4096
        events = [{"status": "pulling manifest"}]
        events += [{"status": "pulling 6a0746a1ec1a", "digest": "sha256:6a0746a1ec1a", "total": total,
                    "completed": done} for done in (0, 1024, 3072, total)]
        events += [{"status": s} for s in ("verifying sha256 digest", "writing manifest", "success")]
        self.models.add(name if ":" in name else f"{name}:latest")
        if body.get("stream") is False:
            return json_reply({"status": "success"})
        return stream_reply([ndjson(e) for e in events], content_type="application/x-ndjson")

    def default(self, rec: Recorded) -> Reply:
        return self._answer(rec, "ok", [], (5, 1), "stop", 1, None)

    # -- answers --------------------------------------------------------------------------------------
    def _answer(self, rec: Recorded, text: str, calls: list[tuple[str, dict[str, Any]]],
                usage: tuple[int, int], done_reason: str, pieces: int, cut_after: int | None) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        model = body.get("model", "model")
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        tool_calls = [{"id": f"call_{i}", "function": {"index": i, "name": n, "arguments": a}}
                      for i, (n, a) in enumerate(calls)]
        final = {"model": model, "created_at": now, "done": True, "done_reason": done_reason,
                 "total_duration": 123456789, "load_duration": 1234567, "prompt_eval_count": usage[0],
                 "prompt_eval_duration": 2345678, "eval_count": usage[1], "eval_duration": 3456789}
        if body.get("stream", True) is False:  # Ollama streams unless told not to
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if tool_calls:
                message["tool_calls"] = tool_calls
            return json_reply({**final, "message": message})
        lines = []
        size = max(1, -(-len(text) // max(1, pieces)))
        for i in range(0, len(text), size):
            lines.append({"model": model, "created_at": now,
                          "message": {"role": "assistant", "content": text[i:i + size]}, "done": False})
        if tool_calls:
            lines.append({"model": model, "created_at": now,
                          "message": {"role": "assistant", "content": "", "tool_calls": tool_calls},
                          "done": False})
        lines.append({**final, "message": {"role": "assistant", "content": ""}})
        return stream_reply([ndjson(line) for line in lines], content_type="application/x-ndjson",
                            cut_after=cut_after)


def _model_entry(name: str) -> dict[str, Any]:
    return {"name": name, "model": name, "modified_at": "2025-01-01T00:00:00Z", "size": 1321098329,
            "digest": "6a0746a1ec1a" * 5 + "abcd",
            "details": {"format": "gguf", "family": "llama", "families": ["llama"], "parameter_size": "1.2B",
                        "quantization_level": "Q8_0"}}


def serve(**kwargs: Any) -> Iterator[OllamaFake]:
    """Generator body for a pytest fixture: ``yield from serve()``."""
    with OllamaFake(**kwargs) as fake:
        yield fake


@pytest.fixture
def ollama_fake() -> Iterator[OllamaFake]:
    yield from serve()
