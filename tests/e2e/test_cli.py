"""The CLI as a user runs it: a subprocess per command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kdeps import __version__
from tests.agents import cli, once
from tests.fakes.base import FakeServer, Recorded, Reply, json_reply

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_help_lists_every_command() -> None:
    proc = cli("--help")
    assert proc.returncode == 0
    for name in ("run", "validate", "eval", "schema", "new", "models", "package", "build"):
        assert name in proc.stdout
    assert cli("--version").stdout.strip().endswith(__version__)
    assert "--once" in cli("run", "--help").stdout


def test_eval_prints_one_json_line_per_expression() -> None:
    proc = cli("eval", "upper(get('q'))", "get('n') * 2", "len(get('tags'))", "get('q') +",
               "--input", "q=hello", "--input", "n=21", "--input", 'tags=["a","b"]')
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[:3] == ["HELLO", 42, 2]
    assert "error" in lines[3] and "get('q') +" in lines[3]["error"]
    assert proc.returncode == 1


def test_eval_reads_stdin() -> None:
    proc = cli("eval", input_text="1 + 2\n'a' + 'b'\n")
    assert proc.stdout.splitlines() == ["3", '"ab"']


def test_text_stats_example() -> None:
    code, out, _ = once(EXAMPLES / "text-stats", text="the quick brown fox")
    assert code == 0
    assert out["data"]["stats"] == {"words": 4, "characters": 19, "longest": "quick"}
    assert out["data"]["shout"] == "THE QUICK BROWN FOX"


def test_text_stats_example_preflight() -> None:
    code, out, err = once(EXAMPLES / "text-stats")
    assert code == 1
    assert out["error"]["message"] == "Send the text to measure as 'text'"
    assert "HTTP 400" in err


class Items(FakeServer):
    def default(self, rec: Recorded) -> Reply:
        return json_reply({"id": rec.path.rsplit("/", 1)[-1], "name": "widget"})


def test_http_proxy_example_against_a_local_server() -> None:
    with Items() as upstream:
        proc = cli("run", str(EXAMPLES / "http-proxy"), "--once", "--input", "id=7",
                   env={"UPSTREAM_URL": upstream.url})
    out = json.loads(proc.stdout)
    assert out == {"success": True, "data": {"item": {"id": "7", "name": "widget"}, "status": 200}}
    assert upstream.last.path == "/items/7"


def test_http_proxy_example_falls_back_when_upstream_is_down() -> None:
    proc = cli("run", str(EXAMPLES / "http-proxy"), "--once", env={"UPSTREAM_URL": "http://127.0.0.1:9"})
    out = json.loads(proc.stdout)
    assert out["success"] is False and out["data"]["item"] == {"unavailable": True}


def test_run_reports_spec_errors_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "workflow.yaml").write_text("apiVersion: kdeps.io/v1\nkind: Workflow\nmetadata:\n  nme: x\n")
    proc = cli("run", str(tmp_path), "--once")
    assert proc.returncode == 1
    assert "workflow.yaml:4:3" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.local_model
@pytest.mark.slow  # a process that loads the model, then generates
def test_new_scaffold_runs_on_the_embedded_model(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    target = tmp_path / "my-agent"
    assert cli("new", str(target)).returncode == 0
    assert cli("validate", str(target)).returncode == 0
    code, out, err = once(target, q="What is the capital of France?")
    assert code == 0, err
    assert isinstance(out["data"]["answer"], str) and out["data"]["answer"].strip()  # not what it knows


@pytest.mark.local_model
@pytest.mark.slow  # a process that loads the model, then generates
def test_hello_example_answers_on_the_embedded_model() -> None:
    pytest.importorskip("llama_cpp")
    code, out, err = once(EXAMPLES / "hello", q="What is the capital of France?")  # `make run`'s question
    assert code == 0, err
    assert isinstance(out["data"]["answer"], str) and out["data"]["answer"].strip()  # not what it knows
    assert out["meta"]["model"] == "smollm2:135m" and out["meta"]["backend"] == "gguf"
    assert [(c["resource"], c["model"]) for c in out["meta"]["llm"]] == [("llmResource", "smollm2:135m")]
