"""`kdeps doctor` as a subprocess: each check and its fix."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.agents import cli, make_agent
from tests.fakes.ollama import OllamaFake


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def agent(root: Path, url: str, port: int = 0) -> Path:
    settings = f"    portNum: {port or free_port()}\n"  # 3000 may be taken on a shared machine
    path = make_agent(root, {
        "local": f"""\
            metadata: {{actionId: local}}
            run:
              chat: {{backend: ollama, baseUrl: "{url}", model: "llama3.2:1b", prompt: "hi"}}
            """,
        "cloud": """\
            metadata: {actionId: cloud, requires: [local]}
            run:
              chat: {backend: openai, model: gpt-4o-mini, prompt: hi}
            """,
        "response": """\
            metadata: {actionId: response, requires: [cloud]}
            run:
              apiResponse: {success: true, response: {v: "get('cloud')"}}
            """,
    })
    wf = path / "workflow.yaml"
    text = wf.read_text().replace("  apiServer:\n", f"  apiServer:\n{settings}")
    wf.write_text(text + f"  agentSettings:\n    ollamaUrl: \"{url}\"\n")
    return path


def test_help() -> None:
    out = cli("doctor", "--help")
    assert out.returncode == 0 and "Run diagnostic health checks" in out.stdout


def test_everything_ready(tmp_path: Path) -> None:
    with OllamaFake(models={"llama3.2:1b"}) as fake:
        out = cli("doctor", str(agent(tmp_path / "a", fake.url)), env={"OPENAI_API_KEY": "sk-test"})
    assert out.returncode == 0, out.stdout
    assert "kdeps doctor" in out.stdout and "Python 3." in out.stdout
    assert "✓ OPENAI_API_KEY is set (backend openai, used by cloud)" in out.stdout
    assert f"✓ Ollama answers at {fake.url}" in out.stdout
    assert "✓ model llama3.2:1b is pulled" in out.stdout
    assert "Overall: ready" in out.stdout


def test_each_problem_with_its_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with OllamaFake(models={"other:1b"}) as fake:
            out = cli("doctor", str(agent(tmp_path / "a", fake.url, port)), env={"OPENAI_API_KEY": ""})
    assert out.returncode == 1
    text = out.stdout
    assert "✗ OPENAI_API_KEY is not set; backend openai is used by cloud" in text
    assert "fix: export OPENAI_API_KEY=..." in text
    assert "✗ model llama3.2:1b is not in Ollama (used by local)" in text
    assert "fix: kdeps models pull llama3.2:1b" in text
    assert f"✗ port {port} on 127.0.0.1 is taken" in text
    assert "Overall: 3 problem(s) to fix" in text


def test_ollama_down(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    out = cli("doctor", str(agent(tmp_path / "a", closed)), env={"OPENAI_API_KEY": "k"})
    assert out.returncode == 1
    assert f"✗ Ollama is not reachable at {closed}" in out.stdout
    assert "fix: start it with `ollama serve`" in out.stdout


def test_broken_agent_points_to_validate(tmp_path: Path) -> None:
    root = make_agent(tmp_path / "a", {"response": "metadata: {actionId: response}\nrun: {bogus: 1}\n"})
    out = cli("doctor", str(root))
    assert out.returncode == 1
    assert "error(s)" in out.stdout and f"fix: kdeps validate {root}" in out.stdout


def test_embedded_model(tmp_path: Path) -> None:
    root = make_agent(tmp_path / "a", {
        "response": "metadata: {actionId: response}\nrun:\n  chat: {backend: gguf, prompt: hi}\n"})
    out = cli("doctor", str(root))
    if "extra 'local' not installed" in out.stdout:
        assert "✗ the gguf backend needs llama-cpp-python" in out.stdout
    else:
        assert "✓ embedded model (default) found (SmolLM2" in out.stdout, out.stdout


def test_validate_warns_about_an_unset_key(tmp_path: Path) -> None:
    root = agent(tmp_path / "a", "http://127.0.0.1:9")
    out = cli("validate", str(root), env={"OPENAI_API_KEY": ""})
    assert out.returncode == 0
    assert "warning: OPENAI_API_KEY is not set; backend openai (used by cloud) will answer 503" in out.stderr
    quiet = cli("validate", str(root), env={"OPENAI_API_KEY": "sk-x"})
    assert "OPENAI_API_KEY" not in quiet.stderr
