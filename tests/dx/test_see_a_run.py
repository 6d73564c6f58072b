"""Seeing a run: per-resource log lines with --verbose, readable text or JSON logs, the failing
resource on every error, python failures kept short for the client and whole in the log, `meta`
listing every model call, Prometheus /metrics, OpenTelemetry spans, and 503 for a missing key."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.agents import cli, make_agent, run_agent
from tests.e2e.server_utils import running
from tests.fakes.ollama import OllamaFake

FAILING = {
    "calc": """\
        metadata: {actionId: calc}
        run:
          python:
            script: |
              x = 1
              print(x / 0)
        """,
    "response": """\
        metadata: {actionId: response, requires: [calc]}
        run:
          apiResponse:
            success: true
            response: {v: "get('calc')"}
        """,
}

OK = {
    "response": """\
        metadata: {actionId: response}
        run:
          apiResponse:
            success: true
            response: {v: "ok"}
        """,
}


def post(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def test_python_failure_short_for_client_whole_in_log_text(tmp_path: Path) -> None:
    root = make_agent(tmp_path / "a", FAILING)
    with running(root, "--verbose", "--log-format", "text") as server:
        status, body = post(server.url + "/api/v1/run")
        assert status == 500
        message = body["error"]["message"]
        assert message.endswith("ZeroDivisionError: division by zero")
        assert "Traceback" not in json.dumps(body)
        assert body["error"]["resource"] == "calc"
    log = server.stderr
    calc_file = str(root / "resources" / "calc.yaml")
    assert "Traceback" in log and f"({calc_file}:1)" in log  # the whole detail, and where
    assert "resource calc failed in" in log  # --verbose: each resource's status and duration
    access = next(line for line in log.splitlines() if "POST /api/v1/run 500" in line)
    assert "resource 'calc': python script exited with code 1" in access
    assert not access.lstrip().startswith("{")  # text, not JSON


def test_json_logs_when_not_a_terminal(tmp_path: Path) -> None:
    root = make_agent(tmp_path / "a", OK)
    with running(root, "--verbose") as server:
        assert post(server.url + "/api/v1/run")[0] == 200
    entries = [json.loads(line) for line in server.stderr.splitlines() if line.startswith("{")]
    resource = next(e for e in entries if e.get("resource") == "response")
    assert resource["status"] == "ok" and resource["durationMs"] >= 0 and resource["level"] == "info"
    assert any(e.get("path") == "/api/v1/run" and e.get("status") == 200 for e in entries)


def test_resource_lines_only_with_verbose(tmp_path: Path) -> None:
    root = make_agent(tmp_path / "a", OK)
    with running(root) as server:
        assert post(server.url + "/api/v1/run")[0] == 200
    assert '"resource":"response"' not in server.stderr
    with running(root, env={"KDEPS_DEBUG": "1"}) as server:
        assert post(server.url + "/api/v1/run")[0] == 200
    assert '"resource":"response"' in server.stderr


def test_metrics_endpoint(tmp_path: Path) -> None:
    root = make_agent(tmp_path / "a", OK)
    with running(root) as server:
        for _ in range(3):
            post(server.url + "/api/v1/run")
        text = get_text(server.url + "/metrics")
    assert 'kdeps_requests_total{method="POST",route="/api/v1/run",status="200"} 3.0' in text
    assert 'kdeps_request_duration_seconds_count{method="POST",route="/api/v1/run"} 3.0' in text
    assert 'kdeps_resource_duration_seconds_count{resource="response",status="ok"} 3.0' in text


def two_models(root: Path, url: str) -> Path:
    return make_agent(root, {
        "first": f"""\
            metadata: {{actionId: first}}
            run:
              chat: {{backend: ollama, baseUrl: "{url}", model: "llama3.2:1b", prompt: "hi"}}
            """,
        "second": f"""\
            metadata: {{actionId: second, requires: [first]}}
            run:
              chat: {{backend: ollama, baseUrl: "{url}", model: "llama3.2:latest", prompt: "again"}}
            """,
        "response": """\
            metadata: {actionId: response, requires: [second]}
            run:
              apiResponse:
                success: true
                response: {a: "get('first')", b: "get('second')"}
            """,
    })


async def test_meta_lists_every_model_and_flags_truncation(tmp_path: Path) -> None:
    with OllamaFake() as fake:
        fake.say("one", usage=(10, 2))
        fake.say("two cut", usage=(7, 5), done_reason="length")
        res = await run_agent(two_models(tmp_path, fake.url))
    assert res.status == 200, res.body
    meta = res.body["meta"]
    assert meta["model"] == "llama3.2:1b" and meta["backend"] == "ollama"
    assert meta["llm"] == [
        {"resource": "first", "backend": "ollama", "model": "llama3.2:1b", "inputTokens": 10,
         "outputTokens": 2, "finishReason": "stop"},
        {"resource": "second", "backend": "ollama", "model": "llama3.2:latest", "inputTokens": 7,
         "outputTokens": 5, "finishReason": "length"},
    ]
    assert meta["truncated"] == ["second"]


async def test_spans_request_resource_llm(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from starlette.testclient import TestClient

    from kdeps import observability
    from kdeps.server.runner import build_app

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observability.setup_tracing(provider)
    try:
        with OllamaFake() as fake:
            fake.say("one", usage=(10, 2))
            fake.say("two", usage=(7, 5))
            app, _ = build_app(two_models(tmp_path, fake.url))
            with TestClient(app) as client:
                assert client.post("/api/v1/run", json={}).status_code == 200
    finally:
        observability.reset_tracing()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    request = spans["POST /api/v1/run"]
    first, chat = spans["resource first"], spans["chat llama3.2:1b"]
    assert first.parent.span_id == request.context.span_id
    assert chat.parent.span_id == first.context.span_id
    assert chat.attributes["gen_ai.system"] == "ollama"
    assert chat.attributes["gen_ai.request.model"] == "llama3.2:1b"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 10
    assert chat.attributes["gen_ai.usage.output_tokens"] == 2
    assert request.attributes["http.response.status_code"] == 200
    assert spans["resource response"].parent.span_id == request.context.span_id


def test_missing_key_is_503_naming_the_variable(tmp_path: Path) -> None:
    root = make_agent(tmp_path / "a", {
        "response": """\
            metadata: {actionId: response}
            run:
              chat: {backend: openai, model: gpt-4o-mini, prompt: hi}
            """,
    })
    out = cli("run", str(root), "--once", env={"OPENAI_API_KEY": ""})
    assert out.returncode == 1
    assert "error (HTTP 503)" in out.stderr and "OPENAI_API_KEY" in out.stderr
