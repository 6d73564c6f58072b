"""A fault-injecting OpenAI-compatible provider for the resilience suite.

Each chat request names its own fate in the prompt, ``case=<kind> id=<n>``; the fake counts attempts
per id, so a transient fault hits the first attempt only and the retry gets a normal answer
(``answer-<n>``, which also proves answers are never mixed up between concurrent requests).
Built on the strict OpenAI fake, so every request is still checked against the wire format.
"""

from __future__ import annotations

import re
from collections import Counter

from tests.fakes.base import Recorded, Reply, drop, slow, text_reply, truncated
from tests.fakes.openai_compat import OpenAICompatFake

SLOW_SECONDS = 4.0
"""How long the `slow` case takes to answer: longer than the agent's timeoutDuration."""

# kind -> (what the first attempt gets, whether later attempts fail the same way)
TRANSIENT = ("r429", "r429s", "r500", "r503", "r529", "reset", "truncated", "badjson", "leak500")
PERMANENT = ("persist", "reject", "leak401")
SUCCESS_EXPECTED = ("ok", *TRANSIENT)
CASE = re.compile(r"case=(\w+) id=(\d+)")


class FaultFake(OpenAICompatFake):
    """`attempts[id]` counts the chat requests seen for each request id."""

    def __init__(self, api_key: str) -> None:
        super().__init__("openai", api_key=api_key)
        self.secret = api_key
        self.attempts: Counter[int] = Counter()

    def default(self, rec: Recorded) -> Reply:
        text = " ".join(str(m.get("content")) for m in (rec.json or {}).get("messages", [])
                        if isinstance(m, dict))
        match = CASE.search(text)
        if match is None:
            return super().default(rec)
        kind, rid = match.group(1), int(match.group(2))
        self.attempts[rid] += 1
        first = self.attempts[rid] == 1
        answer = self._answer(rec, f"answer-{rid}", [], (9, 2), "stop", 3, None, False)
        if kind in TRANSIENT and not first:
            return answer
        return self._fault(kind, rec, rid) or answer

    def _fault(self, kind: str, rec: Recorded, rid: int) -> Reply | None:
        streamed = bool((rec.json or {}).get("stream"))
        if kind == "r429":  # OpenAI sends both headers
            return self._rate_limited({"retry-after-ms": "40", "Retry-After": "1"})
        if kind == "r429s":
            return self._rate_limited({"Retry-After": "1"})
        if kind in ("r500", "persist"):
            return self._err(500, "The server had an error while processing your request.")
        if kind == "r503":
            return self._err(503, "The engine is currently overloaded, please try again later.")
        if kind == "r529":
            return self._err(529, "Overloaded", "overloaded_error")
        if kind == "reset":
            return drop()
        if kind == "truncated":
            return truncated(self._answer(rec, f"answer-{rid}", [], (9, 2), "stop", 3, None, False))
        if kind == "badjson":
            return text_reply('{"id": "chatcmpl-fake", "object": "chat.completion", "choices": [{"ind',
                              content_type="application/json")
        if kind == "slow":
            return slow(self._answer(rec, f"answer-{rid}", [], (9, 2), "stop", 3, None, False), SLOW_SECONDS)
        if kind == "cut" and streamed:
            return self._answer(rec, f"answer-{rid} and a longer tail", [], (9, 2), "stop", 4, 3, False)
        if kind == "reject":
            return self._err(400, "Invalid value for 'temperature': this request is rejected for the test.")
        if kind == "leak500":  # a provider (or a proxy) echoing the key back in an error message
            return self._err(500, f"upstream failure for key {self.secret}")
        if kind == "leak401":
            return self._err(401, f"Incorrect API key provided: {self.secret}.", "invalid_request_error",
                             "invalid_api_key")
        return None

    def _rate_limited(self, headers: dict[str, str]) -> Reply:
        reply = self._err(429, "Rate limit reached for requests.", "requests", "rate_limit_exceeded")
        reply.headers.update(headers)
        return reply
