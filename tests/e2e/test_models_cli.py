"""`kdeps models list/pull` and `kdeps run --pull-models` against the fake Ollama, as a user runs them."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.agents import cli, make_agent
from tests.fakes.ollama import OllamaFake


def test_list_shows_the_servers_models() -> None:
    with OllamaFake(models={"llama3.2:1b", "nomic-embed-text:latest"}) as fake:
        proc = cli("models", "list", "--url", fake.url)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["llama3.2:1b", "nomic-embed-text:latest"]
    assert "1.32 GB" in lines[0]


def test_list_on_empty_server_suggests_a_pull() -> None:
    with OllamaFake(models=set()) as fake:
        proc = cli("models", "list", "--url", fake.url)
    assert "kdeps models pull" in proc.stdout


def test_unreachable_ollama_names_the_url_and_how_to_start_it() -> None:
    proc = cli("models", "list", "--url", "http://127.0.0.1:9")
    assert proc.returncode == 1
    assert "http://127.0.0.1:9" in proc.stderr and "ollama serve" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pull_draws_a_progress_bar_in_a_terminal() -> None:
    with OllamaFake(models=set()) as fake:
        leader, follower = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "kdeps", "models", "pull", "llama3.2:1b",
                                 "--url", fake.url], stdout=follower, stderr=follower)
        os.close(follower)
        screen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        assert proc.wait(timeout=30) == 0
        os.close(leader)
        assert "llama3.2:1b" in fake.models
        pulls = [r for r in fake.requests if r.path == "/api/pull"]
        assert pulls and pulls[0].json == {"model": "llama3.2:1b", "stream": True}
    text = screen.decode()
    assert "\r" in text, "a terminal gets an in-place progress bar"
    assert "[" + "#" * 30 + "] 100%" in text
    assert "25%" in text or "75%" in text
    assert "llama3.2:1b: ready" in text


def test_pull_without_terminal_prints_status_lines() -> None:
    with OllamaFake(models=set()) as fake:
        proc = cli("models", "pull", "qwen2:0.5b", "--url", fake.url)
    assert proc.returncode == 0
    assert "\r" not in proc.stderr
    assert "pulling manifest" in proc.stderr and "success" in proc.stderr


def test_run_pull_models_pulls_agent_settings_models(tmp_path: Path) -> None:
    with OllamaFake(models=set()) as fake:
        root = make_agent(tmp_path, {"response": """\
            metadata: {actionId: response}
            run:
              apiResponse: {success: true, response: ready}
            """}, settings=f"""\
            agentSettings:
              ollamaUrl: "{fake.url}"
              models: [llama3.2:1b, nomic-embed-text]
            """)
        proc = cli("run", str(root), "--once", "--pull-models")
        assert proc.returncode == 0, proc.stderr
        assert {"llama3.2:1b", "nomic-embed-text:latest"} <= fake.models
