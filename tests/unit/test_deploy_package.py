"""`.kdeps` archives and the `kdeps package` / `kdeps build` commands, run as a user would."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from kdeps.deploy import extract_archive, package_project
from kdeps.deploy.package import PackageError
from kdeps.spec import load_project
from tests.unit.test_deploy_support import DATA, make_agent, stages, values

KDEPS = str(Path(sys.executable).with_name("kdeps"))
FULL_FILES = ["data/facts.json", "public/index.html", "requirements.txt", "resources/llm.yaml",
              "resources/response.yaml", "workflow.yaml"]


def kdeps(*args: str, cwd: Path, path_env: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path_env is not None:
        env["PATH"] = path_env
    return subprocess.run([KDEPS, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env,
                          check=False)


def names(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return sorted(m.name for m in tar.getmembers())


def test_package_contents_leave_secrets_out(tmp_path: Path) -> None:
    archive, files = package_project(load_project(DATA / "full"), tmp_path)
    assert archive == tmp_path / "full-agent-2.1.0.kdeps"
    assert names(archive) == FULL_FILES
    assert sorted(files.skipped_secrets) == [".env", "data/cert.pem", "data/server.key"]
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            assert member.uid == 0 and member.uname == "" and member.mode in (0o644, 0o755)


def test_junk_and_outside_links_are_skipped(tmp_path: Path) -> None:
    agent = make_agent(tmp_path / "a", backends=["openai"])
    (agent / "data" / "__pycache__").mkdir(parents=True)
    (agent / "data" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (agent / "data" / "id_rsa").write_text("key")
    (agent / "data" / ".env.production").write_text("A=1")
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")
    (agent / "data" / "link.txt").symlink_to(outside)
    (agent / "data" / "ok.csv").write_text("a,b\n")
    archive, files = package_project(load_project(agent), tmp_path / "out")
    assert "data/ok.csv" in names(archive)
    assert not [n for n in names(archive) if "pycache" in n or "id_rsa" in n or ".env" in n or "link" in n]
    assert sorted(files.skipped_secrets) == ["data/.env.production", "data/id_rsa"]
    assert files.skipped_links == ["data/link.txt"]


def test_extract_round_trip_and_refuses_escapes(tmp_path: Path) -> None:
    archive, _ = package_project(load_project(DATA / "full"), tmp_path)
    unpacked = extract_archive(archive, tmp_path / "x")
    assert load_project(unpacked).workflow.metadata.name == "full-agent"
    evil = tmp_path / "evil.kdeps"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(PackageError, match="unsafe entry"):
        extract_archive(evil, tmp_path / "y")
    assert not (tmp_path / "escape.txt").exists()
    (tmp_path / "junk.kdeps").write_text("not a tarball")
    with pytest.raises(PackageError, match="not a readable"):
        extract_archive(tmp_path / "junk.kdeps", tmp_path / "z")


def test_cli_package_warns_and_writes(tmp_path: Path) -> None:
    proc = kdeps("package", str(DATA / "full"), "--output", str(tmp_path / "dist"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Packaged 6 file(s) into" in proc.stdout
    for skipped in (".env", "data/cert.pem", "data/server.key"):
        assert f"warning: skipped {skipped}" in proc.stderr
    assert names(tmp_path / "dist" / "full-agent-2.1.0.kdeps") == FULL_FILES


def test_cli_package_refuses_invalid_workflow(tmp_path: Path) -> None:
    agent = make_agent(tmp_path / "bad", backends=["openai"])
    text = (agent / "workflow.yaml").read_text().replace("targetActionId: response", "targetActionId: nope")
    text = text.replace("apiServerMode: true", "apiServerMode: true\n  portNumm: 1")
    (agent / "workflow.yaml").write_text(text)
    proc = kdeps("package", str(agent), "--output", str(tmp_path / "dist"), cwd=tmp_path)
    assert proc.returncode == 1
    assert "workflow.yaml" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())


def test_cli_show_dockerfile_prints_only(tmp_path: Path) -> None:
    proc = kdeps("build", str(DATA / "x"), "--show-dockerfile", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    st = stages(proc.stdout)
    assert list(st) == ["uv", "builder", "runtime"]
    assert values(st["runtime"], "USER") == ["10001:10001"]
    assert list(tmp_path.iterdir()) == []            # nothing written without --output


def test_cli_build_without_docker_writes_files(tmp_path: Path) -> None:
    # PATH without docker: the command must say so and leave the files.
    proc = kdeps("build", str(DATA / "full"), "--output", "ctx", "--tag", "me/full:2",
                 cwd=tmp_path, path_env=str(Path(sys.executable).parent))
    assert proc.returncode == 0, proc.stderr
    assert "No Docker engine is available (the docker command is not installed)" in proc.stdout
    assert "docker build -t me/full:2" in proc.stdout
    ctx = tmp_path / "ctx"
    assert {p.name for p in ctx.iterdir()} >= {"Dockerfile", "entrypoint.sh", "docker-compose.yml",
                                               ".dockerignore", "agent"}
    assert os.access(ctx / "entrypoint.sh", os.X_OK)
    assert sorted(p.relative_to(ctx / "agent").as_posix() for p in (ctx / "agent").rglob("*")
                  if p.is_file()) == FULL_FILES
    workflow = yaml.safe_load((ctx / "agent" / "workflow.yaml").read_text())
    assert workflow["settings"]["agentSettings"]["env"]["OPENAI_API_KEY"] == ""   # secret blanked
    everything = "".join(p.read_text() for p in ctx.rglob("*") if p.is_file())
    assert "sk-test-not-a-real-key" not in everything
    compose = yaml.safe_load((ctx / "docker-compose.yml").read_text())
    assert compose["services"]["full-agent"]["image"] == "me/full:2"
    assert "OPENAI_API_KEY looks like a secret" in proc.stderr and "sk-test" not in proc.stderr


def test_cli_build_rewrites_its_own_output_and_refuses_a_foreign_folder(tmp_path: Path) -> None:
    for _ in range(2):
        assert kdeps("build", str(DATA / "full"), "--output", "ctx", cwd=tmp_path,
                     path_env=str(Path(sys.executable).parent)).returncode == 0
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("mine")
    refused = kdeps("build", str(DATA / "full"), "--output", "foreign", cwd=tmp_path)
    assert refused.returncode == 1 and "not written by kdeps build" in refused.stderr
    assert (tmp_path / "foreign" / "keep.txt").read_text() == "mine"


def test_cli_build_from_archive(tmp_path: Path) -> None:
    assert kdeps("package", str(DATA / "cloud"), "-o", str(tmp_path), cwd=tmp_path).returncode == 0
    proc = kdeps("build", str(tmp_path / "cloud-agent-1.0.0.kdeps"), "--show-dockerfile", "--gpu", "cuda",
                 cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04 AS runtime" in proc.stdout
    assert "Ollama: not installed" in proc.stdout


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client on this machine")
def test_cli_build_with_client_but_no_engine(tmp_path: Path) -> None:
    from kdeps.deploy import docker_engine

    available, _ = docker_engine()
    if available:
        pytest.skip("a Docker engine answers here; this test covers the client-only case")
    proc = kdeps("build", str(DATA / "cloud"), "-o", "ctx", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "No Docker engine is available (the Docker engine is not reachable" in proc.stdout
    assert (tmp_path / "ctx" / "Dockerfile").is_file()


def _fake_tool(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


@pytest.mark.parametrize("build_rc", [0, 3])
def test_cli_build_runs_docker_when_engine_answers(tmp_path: Path, build_rc: int) -> None:
    # A stand-in docker CLI: `info` answers like an engine, `build` logs its arguments.
    log = tmp_path / "docker.log"
    _fake_tool(tmp_path / "bin", "docker", f'echo "$@" >> {log}\n'
               'case "$1" in info) echo 27.3.1 ;; build) echo "#1 building"; '
               f'exit {build_rc} ;; esac\n')
    proc = kdeps("build", str(DATA / "cloud"), "-o", "ctx", "-t", "me/cloud:1", cwd=tmp_path,
                 path_env=f"{tmp_path / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
    calls = log.read_text().splitlines()
    assert calls[0].startswith("info")
    assert calls[1] == f"build --tag me/cloud:1 {tmp_path / 'ctx'}"
    assert "Building me/cloud:1 with Docker 27.3.1" in proc.stdout and "#1 building" in proc.stdout
    if build_rc == 0:
        assert proc.returncode == 0 and "Built me/cloud:1. Run: docker run --rm -p 3000:3000" in proc.stdout
    else:
        assert proc.returncode == 3 and "docker build failed (exit 3)" in proc.stderr


def test_cli_build_reports_engine_error(tmp_path: Path) -> None:
    _fake_tool(tmp_path / "bin", "docker",
               'echo "Cannot connect to the Docker daemon at unix:///x.sock." >&2\nexit 1\n')
    proc = kdeps("build", str(DATA / "cloud"), "-o", "ctx", cwd=tmp_path,
                 path_env=f"{tmp_path / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
    assert proc.returncode == 0, proc.stderr
    assert "No Docker engine is available (the Docker engine is not reachable: Cannot connect" in proc.stdout
    assert "no image was built" in proc.stdout and (tmp_path / "ctx" / "Dockerfile").is_file()


def test_entrypoint_starts_ollama_pulls_models_then_serves(tmp_path: Path) -> None:
    from kdeps.deploy import plan_build, render_entrypoint

    agent = make_agent(tmp_path / "a", backends=[], agent_settings={"models": ["llama3.2:1b", "phi3:mini"]})
    script = tmp_path / "entrypoint.sh"
    script.write_text(render_entrypoint(plan_build(load_project(agent))))
    log, ready = tmp_path / "calls.log", tmp_path / "ready"
    # ollama: `serve` becomes ready after a moment; `list` fails until then; `pull` is logged.
    _fake_tool(tmp_path / "bin", "ollama",
               f'echo "ollama $*" >> {log}\n'
               f'case "$1" in serve) sleep 1; touch {ready} ;; list) [ -e {ready} ] ;; esac\n')
    _fake_tool(tmp_path / "bin", "kdeps", f'echo "kdeps $*" >> {log}\n')
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(["sh", str(script), "--workers", "2"], env=env, capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    calls = [c for c in log.read_text().splitlines() if c != "ollama list"]
    assert calls == ["ollama serve", "ollama pull llama3.2:1b", "ollama pull phi3:mini",
                     "kdeps run /agent --host 0.0.0.0 --port 3000 --workers 2"]
    assert "kdeps: pulling llama3.2:1b" in proc.stderr


def test_cli_build_with_local_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "kdeps-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    proc = kdeps("build", str(DATA / "x"), "-o", "ctx", "--wheel", str(wheel), cwd=tmp_path,
                 path_env=str(Path(sys.executable).parent))
    assert proc.returncode == 0, proc.stderr
    st = stages((tmp_path / "ctx" / "Dockerfile").read_text())
    assert "wheels/ /tmp/wheels/" in values(st["builder"], "COPY")
    install = values(st["builder"], "RUN")[-1]
    assert "'kdeps[local] @ file:///tmp/wheels/kdeps-0.1.0-py3-none-any.whl'" in install
    assert (tmp_path / "ctx" / "wheels" / wheel.name).read_bytes() == b"PK"
    other = tmp_path / "other.whl"
    other.write_bytes(b"PK")
    refused = kdeps("build", str(DATA / "x"), "--wheel", str(other), "--show-dockerfile", cwd=tmp_path)
    assert refused.returncode == 1 and "expects a kdeps wheel" in refused.stderr
