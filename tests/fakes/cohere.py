"""A strict fake of Cohere's Chat API v2 (`POST /v2/chat`).

Like the real API it rejects unknown fields anywhere (top level, messages, tools — OpenAI's
`strict` included) with 422 "unknown field: parameter '…' is not a valid field", answers 401 to a
missing or wrong Bearer token, 404 to other paths, and 400 to `response_format` combined with tools
or to a tool message whose `tool_call_id` answers no earlier tool call. Error bodies are
`{"id": …, "message": …}`; the exact texts beyond `message` are this fake's own.

Script answers with :meth:`CohereFake.reply`; streamed as SSE events (`message-start` …
`message-end`) when the request has `stream: true`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Self

from tests.fakes.base import FakeServer, Recorded, Reply, json_reply, sse, stream_reply

KEY = "co-fake-key"
_TOP = {
    "model",
    "messages",
    "tools",
    "strict_tools",
    "documents",
    "citation_options",
    "response_format",
    "safety_mode",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "k",
    "p",
    "logprobs",
    "tool_choice",
    "thinking",
    "priority",
    "stream",
}
_ROLE_FIELDS = {
    "system": {"role", "content"},
    "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls", "tool_plan", "citations"},
    "tool": {"role", "tool_call_id", "content"},
}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"id": "fake-error-id", "message": message}


def answer(
    text: str = "",
    calls: Sequence[tuple[str, dict[str, Any]]] = (),
    *,
    usage: tuple[int, int] = (6, 3),
    finish: str | None = None,
) -> dict[str, Any]:
    """A v2 chat response."""
    msg: dict[str, Any] = {"role": "assistant"}
    if calls:
        msg["tool_plan"] = text or "I will call the tools."
        msg["tool_calls"] = [
            {
                "id": f"{name}_{i}fake",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for i, (name, args) in enumerate(calls)
        ]
    else:
        msg["content"] = [{"type": "text", "text": text}]
    return {
        "id": "chat-fake",
        "finish_reason": finish or ("TOOL_CALL" if calls else "COMPLETE"),
        "message": msg,
        "usage": {
            "billed_units": {"input_tokens": usage[0], "output_tokens": usage[1]},
            "tokens": {"input_tokens": usage[0] + 100, "output_tokens": usage[1]},
        },
    }


def events(resp: dict[str, Any], pieces: int = 3) -> list[str]:
    """The SSE events of `resp` as Cohere streams them."""
    msg = resp["message"]
    out = [
        sse(
            {
                "type": "message-start",
                "id": resp["id"],
                "delta": {
                    "message": {
                        "role": "assistant",
                        "content": [],
                        "tool_plan": "",
                        "tool_calls": [],
                        "citations": [],
                    }
                },
            },
            "message-start",
        )
    ]
    if msg.get("tool_calls"):
        out.append(
            sse(
                {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": msg["tool_plan"]}}},
                "tool-plan-delta",
            )
        )
        for i, call in enumerate(msg["tool_calls"]):
            args = call["function"]["arguments"]
            size = max(1, -(-len(args) // pieces))
            start = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
            out.append(
                sse(
                    {"type": "tool-call-start", "index": i, "delta": {"message": {"tool_calls": start}}},
                    "tool-call-start",
                )
            )
            out += [
                sse(
                    {
                        "type": "tool-call-delta",
                        "index": i,
                        "delta": {"message": {"tool_calls": {"function": {"arguments": args[j : j + size]}}}},
                    },
                    "tool-call-delta",
                )
                for j in range(0, len(args), size)
            ]
            out.append(sse({"type": "tool-call-end", "index": i}, "tool-call-end"))
    else:
        text = msg["content"][0]["text"]
        size = max(1, -(-len(text) // pieces))
        out.append(
            sse(
                {
                    "type": "content-start",
                    "index": 0,
                    "delta": {"message": {"content": {"type": "text", "text": ""}}},
                },
                "content-start",
            )
        )
        out += [
            sse(
                {
                    "type": "content-delta",
                    "index": 0,
                    "delta": {"message": {"content": {"text": text[j : j + size]}}},
                },
                "content-delta",
            )
            for j in range(0, len(text), size)
        ]
        out.append(sse({"type": "content-end", "index": 0}, "content-end"))
    out.append(
        sse(
            {
                "type": "message-end",
                "delta": {"finish_reason": resp["finish_reason"], "usage": resp["usage"]},
            },
            "message-end",
        )
    )
    return out


def _unknown(name: str) -> Reply:
    return (
        json_reply(error_body(422, ""), 422)
        if not name
        else json_reply(error_body(422, f"unknown field: parameter '{name}' is not a valid field"), 422)
    )


def _bad(message: str) -> Reply:
    return json_reply(error_body(400, f"invalid request: {message}"), 400)


class CohereFake(FakeServer):
    """Scriptable Cohere v2 server; `key` is the only API key it accepts."""

    def __init__(self, key: str = KEY) -> None:
        super().__init__()
        self.key = key

    def error_body(self, status: int, message: str) -> Any:
        return error_body(status, message)

    def default(self, rec: Recorded) -> Reply:
        return self._answer(rec, answer("ok"), 3, None)

    def reply(
        self,
        text: str = "",
        calls: Sequence[tuple[str, dict[str, Any]]] = (),
        *,
        usage: tuple[int, int] = (6, 3),
        finish: str | None = None,
        pieces: int = 3,
        cut_after: int | None = None,
    ) -> Self:
        """Queue one answer (JSON, or SSE events when the request has `stream: true`)."""
        resp = answer(text, calls, usage=usage, finish=finish)
        return self.push(lambda rec: self._answer(rec, resp, pieces, cut_after))

    @staticmethod
    def _answer(rec: Recorded, resp: dict[str, Any], pieces: int, cut_after: int | None) -> Reply:
        if (rec.json or {}).get("stream"):
            return stream_reply(events(resp, pieces), cut_after=cut_after)
        return json_reply(resp)

    # -- strictness ---------------------------------------------------------------------------------
    def validate(self, rec: Recorded) -> Reply | None:
        if rec.method != "POST" or rec.path != "/v2/chat":
            return json_reply(error_body(404, f"404 page not found: {rec.path}"), 404)
        auth = rec.header("authorization", "") or ""
        if not auth:
            return json_reply(error_body(401, "no api key supplied"), 401)
        if auth != f"Bearer {self.key}":
            return json_reply(error_body(401, "invalid api token"), 401)
        body = rec.json
        if not isinstance(body, dict):
            return _bad("body must be a JSON object")
        for name in body:
            if name not in _TOP:
                return _unknown(name)
        if not isinstance(body.get("model"), str) or not body["model"]:
            return _bad("model must be a non-empty string")
        if body.get("response_format") and (body.get("tools") or body.get("documents")):
            return _bad("response_format is not supported with tools or documents")
        return self._check_tools(body.get("tools") or []) or self._check_messages(body.get("messages"))

    @staticmethod
    def _check_tools(tools: list[Any]) -> Reply | None:
        for tool in tools:
            for name in tool:
                if name not in ("type", "function"):
                    return _unknown(name)
            for name in tool.get("function") or {}:
                if name not in ("name", "description", "parameters"):
                    return _unknown(name)
        return None

    @staticmethod
    def _check_messages(messages: Any) -> Reply | None:
        if not isinstance(messages, list) or not messages:
            return _bad("messages must be a non-empty list")
        calls: set[str] = set()
        for msg in messages:
            role = msg.get("role")
            if role not in _ROLE_FIELDS:
                return _bad(f"role must be one of system, user, assistant, tool; got {role!r}")
            for name in msg:
                if name not in _ROLE_FIELDS[role]:
                    return _unknown(name)
            content = msg.get("content")
            if isinstance(content, list):
                for part in content:
                    if part.get("type") == "image_url":
                        url = (part.get("image_url") or {}).get("url", "")
                        if not url.startswith(("data:image/", "http://", "https://")):
                            return _bad("image_url.url must be a data URL or an http(s) URL")
                    elif part.get("type") not in ("text", "document"):
                        return _bad(f"unknown content type {part.get('type')!r}")
            for call in msg.get("tool_calls") or []:
                calls.add(call.get("id", ""))
                try:
                    json.loads(call["function"]["arguments"])
                except (KeyError, TypeError, ValueError):
                    return _bad("tool_calls[].function.arguments must be a JSON string")
            if role == "tool" and msg.get("tool_call_id") not in calls:
                return _bad(f"tool message references unknown tool_call_id {msg.get('tool_call_id')!r}")
        return None
