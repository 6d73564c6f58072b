"""Write a Docker build context for an agent, and run `docker build` when an engine answers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdeps.deploy.compose import render_compose
from kdeps.deploy.dockerfile import render_dockerfile, render_dockerignore, render_entrypoint
from kdeps.deploy.package import FileSet, PackageError, collect_files
from kdeps.deploy.plan import BuildPlan

MARKER = ".kdeps-build"   # marks a folder this module wrote, so it may be rewritten safely


@dataclass
class BuildContext:
    """Where the generated files went."""

    directory: Path
    dockerfile: Path
    entrypoint: Path
    compose: Path
    files: FileSet


def write_context(project: Any, plan: BuildPlan, out_dir: Path, wheel: Path | None = None) -> BuildContext:
    """Write Dockerfile, entrypoint.sh, docker-compose.yml, .dockerignore and a copy of the agent
    (same file selection as `kdeps package`) into `out_dir`."""
    out = Path(out_dir).resolve()
    root = Path(project.root).resolve()
    if out == root or root.is_relative_to(out):
        raise PackageError(f"output folder {out} contains the agent itself; choose another --output")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise PackageError(f"output folder {out} is not empty and was not written by kdeps build; "
                           "choose another --output")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by kdeps build; safe to delete\n")
    fileset = collect_files(project)
    agent_dir = out / "agent"
    if agent_dir.exists():
        shutil.rmtree(agent_dir)
    for rel in fileset.files:
        target = agent_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    if plan.secret_values:
        workflow_copy = agent_dir / Path(project.workflow_file).resolve().relative_to(root)
        workflow_copy.write_text(blank_values(workflow_copy.read_text(), plan.secret_values))
    wheels = out / "wheels"
    if wheels.exists():
        shutil.rmtree(wheels)
    if wheel is not None:
        wheels.mkdir()
        shutil.copy2(wheel, wheels / wheel.name)
    dockerfile, entrypoint, compose = out / "Dockerfile", out / "entrypoint.sh", out / "docker-compose.yml"
    dockerfile.write_text(render_dockerfile(plan))
    entrypoint.write_text(render_entrypoint(plan))
    entrypoint.chmod(0o755)
    compose.write_text(render_compose(plan))
    (out / ".dockerignore").write_text(render_dockerignore())
    return BuildContext(out, dockerfile, entrypoint, compose, fileset)


def blank_values(text: str, values: list[str]) -> str:
    """Replace each secret value (bare or quoted) in YAML text with an empty string."""
    for value in sorted(set(values), key=len, reverse=True):
        text = re.sub(r"""(["']?)""" + re.escape(value) + r"\1", '""', text)
    return text


def docker_engine() -> tuple[bool, str]:
    """(True, server version) when a docker client is installed and its engine answers;
    (False, why not) otherwise."""
    docker = shutil.which("docker")
    if docker is None:
        return False, "the docker command is not installed"
    try:
        proc = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                              text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`docker info` did not answer ({exc.__class__.__name__})"
    version = proc.stdout.strip()
    if proc.returncode != 0 or not version or "error" in version.lower():
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "daemon" in ln.lower() or "error" in ln.lower()),
                      lines[-1] if lines else "no output")
        return False, f"the Docker engine is not reachable: {detail}"
    return True, version


def docker_build(context: Path, tag: str) -> int:
    """Run `docker build` on a written context, streaming docker's own progress to the terminal."""
    docker = shutil.which("docker") or "docker"
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    return subprocess.call([docker, "build", "--tag", tag, str(context)], env=env)
