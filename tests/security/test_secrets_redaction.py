"""Secrets stay out of what people read: URLs in errors and logs lose user info and query values;
`kdeps build`/`package` warn on credentials written literally in the YAML and keep URL credentials
out of the Dockerfile's ENV lines."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kdeps.deploy import plan_build, render_dockerfile
from kdeps.llm import transport
from kdeps.spec import load_project
from tests.agents import cli, make_agent, run_agent


@pytest.mark.parametrize(("url", "shown"), [
    ("https://bob:pw@api.example.com/v1/x?key=SECRET&mode=fast#frag", "https://api.example.com/v1/x?key=***&mode=***"),
    ("http://token@127.0.0.1:8080/p", "http://127.0.0.1:8080/p"),
    ("https://api.example.com/v1beta/models:generate?alt=sse", "https://api.example.com/v1beta/models:generate?alt=***"),
    ("https://api.example.com/plain", "https://api.example.com/plain"),
    ("https://h/x?flag", "https://h/x?flag"),
])
def test_safe_url(url: str, shown: str) -> None:
    assert transport.safe_url(url) == shown


def test_urls_inside_messages_are_redacted() -> None:
    text = "cannot reach 'http://u:hunter2@h:1/a?key=sk-live-1' (and https://x/y?token=abc) now"
    out = transport.redact_urls(text)
    assert "hunter2" not in out and "sk-live-1" not in out and "abc" not in out
    assert "http://h:1/a?key=***" in out and "https://x/y?token=***" in out


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_llm_error_hides_url_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-123456")
    root = make_agent(tmp_path, {"answer": f"""\
        metadata: {{actionId: answer}}
        run:
          chat:
            backend: openai
            baseUrl: "http://robot:hunter2pw@127.0.0.1:{closed_port()}/v1?api-key=sk-in-url-999"
            model: gpt-4o
            prompt: hi
            retry: {{maxAttempts: 1}}
        """}, target="answer")
    res = await run_agent(root)
    assert res.status >= 500
    text = str(res.body)
    for secret in ("hunter2pw", "robot", "sk-in-url-999", "sk-test-key-123456"):
        assert secret not in text, secret


LITERALS = {
    "chat": """\
        metadata: {actionId: chat}
        run:
          chat:
            backend: openai
            apiKey: "sk-proj-abcdefghijklmnop"
            model: gpt-4o
            prompt: hi
        """,
    "fetch": """\
        metadata: {actionId: fetch}
        run:
          httpClient:
            url: "https://deploy:s3cretpw@api.example.com/v1"
            headers:
              Authorization: "Bearer abcdefghijklmnopqrstuvwxyz"
            auth: {type: api_key, key: X-Api-Key, value: "literal-api-key-value"}
        """,
    "fine": """\
        metadata: {actionId: fine, requires: [chat, fetch]}
        run:
          chat:
            backend: openai
            apiKey: "{{ get('OPENAI_API_KEY', 'env') }}"
            model: gpt-4o
            prompt: hi
            maxTokens: 300
        """,
}


def literal_agent(tmp_path: Path) -> Path:
    return make_agent(tmp_path, LITERALS, target="fine", settings="""\
        agentSettings:
          env:
            DATABASE_URL: "postgres://app:dbpass123@db.internal:5432/main"
            SITE_URL: "https://example.com/"
        """)


def test_build_warns_on_literal_credentials(tmp_path: Path) -> None:
    plan = plan_build(load_project(literal_agent(tmp_path)))
    warnings = "\n".join(plan.warnings)
    assert "resources/chat.yaml: run.chat.apiKey holds a literal credential" in warnings
    assert "resources/fetch.yaml: run.httpClient.headers.Authorization holds a literal credential" in warnings
    assert "resources/fetch.yaml: run.httpClient.auth.value holds a literal credential" in warnings
    assert "resources/fetch.yaml: run.httpClient.url holds a URL with a user name or password" in warnings
    assert "fine.yaml" not in warnings
    for secret in ("sk-proj-abcdefghijklmnop", "s3cretpw", "abcdefghijklmnopqrstuvwxyz", "dbpass123"):
        assert secret not in warnings


def test_url_credentials_stay_out_of_env_lines(tmp_path: Path) -> None:
    plan = plan_build(load_project(literal_agent(tmp_path)))
    dockerfile = render_dockerfile(plan)
    assert "dbpass123" not in dockerfile and "DATABASE_URL=" not in dockerfile
    assert 'SITE_URL="https://example.com/"' in dockerfile
    assert "DATABASE_URL" in plan.runtime_env
    assert any("DATABASE_URL looks like a secret" in w for w in plan.warnings)


def test_package_warns_on_literal_credentials(tmp_path: Path) -> None:
    root = literal_agent(tmp_path / "agent")
    proc = cli("package", str(root), "--output", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "run.chat.apiKey holds a literal credential" in proc.stderr
    assert "sk-proj-abcdefghijklmnop" not in proc.stderr
