"""Build output that runs: compose and the `docker run` hint pass each used backend's key variable
by name (never its value), models chat resources name are pulled, and `run`/`validate` take a
.kdeps package — all through the CLI as a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.agents import cli, make_agent


def agent(root: Path) -> Path:
    return make_agent(root, {
        "local": """\
            metadata: {actionId: local}
            run:
              chat: {backend: ollama, model: "qwen2.5:0.5b", prompt: "hi"}
            """,
        "cloud": """\
            metadata: {actionId: cloud, requires: [local]}
            run:
              chat: {backend: anthropic, model: claude-3-5-haiku-latest, prompt: hi}
            """,
        "response": """\
            metadata: {actionId: response, requires: [cloud]}
            run:
              apiResponse: {success: true, response: {v: "ok"}}
            """,
    })


def test_compose_and_hint_pass_keys_by_name_and_models_are_pulled(tmp_path: Path) -> None:
    root = agent(tmp_path / "a")
    out_dir = tmp_path / "out"
    secret = "sk-ant-do-not-leak-1234"
    out = cli("build", str(root), "-o", str(out_dir),
              env={"ANTHROPIC_API_KEY": secret, "PATH": "/nonexistent"})  # no docker: files and hint only
    assert out.returncode == 0, out.stderr
    compose = yaml.safe_load((out_dir / "docker-compose.yml").read_text())
    service = next(iter(compose["services"].values()))
    assert service["environment"]["ANTHROPIC_API_KEY"] == "${ANTHROPIC_API_KEY:-}"
    assert "-e ANTHROPIC_API_KEY" in out.stdout  # the ready-to-run hint
    entrypoint = (out_dir / "entrypoint.sh").read_text()
    assert "qwen2.5:0.5b" in entrypoint  # pulled at start, though agentSettings.models is empty
    for file in out_dir.rglob("*"):
        if file.is_file():
            assert secret not in file.read_text(errors="replace")


def test_run_and_validate_take_a_package(tmp_path: Path) -> None:
    root = make_agent(tmp_path / "a", {"response": """\
        metadata: {actionId: response}
        run:
          apiResponse: {success: true, response: {v: "from the package"}}
        """})
    packed = cli("package", str(root), "-o", str(tmp_path / "dist"))
    assert packed.returncode == 0, packed.stderr
    [archive] = (tmp_path / "dist").glob("*.kdeps")
    assert cli("validate", str(archive)).returncode == 0
    out = cli("run", str(archive), "--once")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["data"] == {"v": "from the package"}
