"""`kdeps build`: write a Dockerfile, entrypoint and docker-compose.yml for an agent, and build the
image when a Docker engine answers."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import click

from kdeps.cli.common import fail, load
from kdeps.deploy.plan import GPU_KINDS

_WHEEL = re.compile(r"^kdeps-[^-]+-.+\.whl$")


def _load_any(path: Path, scratch: str) -> Any:
    """Load a folder, a workflow file, or a .kdeps archive (unpacked into `scratch`)."""
    if path.is_file() and path.suffix == ".kdeps":
        from kdeps.deploy.package import PackageError, extract_archive

        try:
            return load(str(extract_archive(path, Path(scratch) / "agent")))
        except PackageError as err:
            fail(f"error: {err}")
    return load(str(path))


@click.command(name="build")
@click.argument("path", default=".", type=click.Path(exists=True, path_type=Path))
@click.option("--tag", "-t", default=None, help="Image tag (default: <name>:<version>).")
@click.option("--gpu", type=click.Choice(GPU_KINDS), default=None, help="GPU support (default: CPU only).")
@click.option("--show-dockerfile", is_flag=True,
              help="Print the Dockerfile and stop (files are written only with --output).")
@click.option("--output", "-o", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Build folder (default: ./build/<name>-<version>).")
@click.option("--wheel", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Install kdeps in the image from this wheel instead of the package index.")
def command(path: Path, tag: str | None, gpu: str | None, show_dockerfile: bool, output: Path | None,
            wheel: Path | None) -> None:
    """Write Docker build files for the agent at PATH (folder, workflow.yaml or .kdeps archive) and
    build the image if a Docker engine is available."""
    from kdeps.deploy.build import docker_build, docker_engine, write_context
    from kdeps.deploy.dockerfile import render_dockerfile, run_hints
    from kdeps.deploy.package import PackageError
    from kdeps.deploy.plan import plan_build

    if wheel is not None and not _WHEEL.match(wheel.name):
        fail(f"error: --wheel expects a kdeps wheel (kdeps-<version>-...whl), got {wheel.name}")
    with tempfile.TemporaryDirectory(prefix="kdeps-build-") as scratch:
        project = _load_any(path, scratch)
        plan = plan_build(project, gpu=gpu, tag=tag, kdeps_wheel=wheel.name if wheel else None)
        for message in plan.warnings:
            click.echo(f"warning: {message}", err=True)
        if show_dockerfile:
            click.echo(render_dockerfile(plan), nl=False)
            if output is None:
                return
        out = output or Path("build") / f"{plan.name}-{plan.version}"
        try:
            ctx = write_context(project, plan, out, wheel=wheel)
        except (PackageError, OSError) as err:
            fail(f"error: cannot write the build files: {err}")
    report = click.echo if not show_dockerfile else (lambda msg: click.echo(msg, err=True))
    for rel in ctx.files.skipped_secrets:
        click.echo(f"warning: left {rel} out of the image: it looks like a secret", err=True)
    report(f"Wrote {ctx.directory}/: Dockerfile, entrypoint.sh, docker-compose.yml, agent/ "
           f"({len(ctx.files.files)} file(s))")
    report(f"Ollama: {'installed' if plan.ollama else 'not installed'} ({plan.ollama_reason})")
    if show_dockerfile:
        return
    available, detail = docker_engine()
    if not available:
        report(f"No Docker engine is available ({detail}); no image was built.")
        report(f"Build it where Docker runs with:  docker build -t {plan.tag} {ctx.directory}")
        report(f"                              or:  docker compose -f {ctx.compose} up --build")
        report(f"Then run it with:                 {run_hints(plan)[0].removeprefix('Run: ')}")
        return
    report(f"Building {plan.tag} with Docker {detail} ...")
    code = docker_build(ctx.directory, plan.tag)
    if code != 0:
        fail(f"error: docker build failed (exit {code}); the build files are in {ctx.directory}", code)
    report(f"Built {plan.tag}. {run_hints(plan)[0]}")
