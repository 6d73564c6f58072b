"""LLM errors shown to HTTP clients never name the internal base URL: the client reads "the upstream"
(resource, backend and status still named); the server log has the (redacted) URL."""

from __future__ import annotations

import socket
from pathlib import Path

from kdeps.llm.errors import LLMConnectionError, UpstreamError, hide_urls
from tests.agents import make_agent
from tests.e2e.server_utils import running
from tests.security.http import call


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_upstream_is_reported_without_its_url(tmp_path: Path) -> None:
    port = _closed_port()
    base = f"http://127.0.0.1:{port}/internal-gateway/v1"
    agent = make_agent(tmp_path / "agent", {"answer": f"""\
        metadata:
          actionId: answer
        run:
          chat:
            backend: openai
            baseUrl: "{base}"
            model: gpt-4o
            prompt: hi
            retry:
              maxAttempts: 1
        """}, target="answer")
    with running(agent, env={"OPENAI_API_KEY": "sk-test-key-123456"}) as server:
        status, _, body = call(server.url, "POST", "/api/v1/run", body={"q": "x"})
        log = server.stderr
    message = body["error"]["message"]
    assert status == 502
    assert body["error"]["resource"] == "answer"
    assert "openai" in message and "upstream" in message
    assert f"127.0.0.1:{port}" not in message and "internal-gateway" not in message
    assert f"127.0.0.1:{port}/internal-gateway" in log  # the operator still sees where it failed
    assert "sk-test-key-123456" not in log


def test_error_text_hides_urls_and_keeps_the_rest() -> None:
    err = UpstreamError("ollama", "answer from http://10.0.0.7:11434/api/chat is not valid JSON", 503)
    assert str(err) == "ollama HTTP 503: answer from the upstream is not valid JSON"
    assert err.detail.startswith("answer from http://10.0.0.7:11434/api/chat")
    assert hide_urls("Cannot connect to host gpu-box.internal:8000 ssl:default") == \
        "Cannot connect to the upstream ssl:default"
    assert LLMConnectionError("vllm", "cannot reach https://gw.corp/v1 (refused)").message == \
        "cannot reach the upstream (refused)"
