"""`kdeps export k8s`: Kubernetes manifests for an agent, as one YAML stream or a kustomize folder."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from kdeps.cli.common import fail, load


def _load_any(path: Path, scratch: str) -> Any:
    """Load a folder, a workflow file, or a .kdeps archive (unpacked into `scratch`)."""
    if path.is_file() and path.suffix == ".kdeps":
        from kdeps.deploy.package import PackageError, extract_archive

        try:
            return load(str(extract_archive(path, Path(scratch) / "agent")), require_target=False)
        except PackageError as err:
            fail(f"error: {err}")
    # As KDeps: manifests for a workflow without resources (yet) are still written.
    return load(str(path), require_target=False)


@click.group(name="export")
def command() -> None:
    """Export an agent to a deployment platform."""


@command.command(name="k8s")
@click.argument("path", default=".", type=click.Path(exists=True, path_type=Path))
@click.option("--image", "-i", default=None,
              help="Container image (default: the tag `kdeps build` gives it).")
@click.option("--replicas", "-r", type=click.IntRange(min=1), default=None,
              help="Pod replicas (overrides agentSettings.replicas).")
@click.option("--output", "-o", default=None, type=click.Path(path_type=Path),
              help="A .yaml/.yml file for one YAML stream, any other path for a kustomize folder "
                   "(default: stdout).")
@click.option("--network-policy/--no-network-policy", default=None,
              help="Add NetworkPolicies that admit only the served ports "
                   "(default: agentSettings.networkPolicy).")
@click.option("--gpu", is_flag=True, help="Request an NVIDIA GPU (for Ollama, or the agent's own model) "
                                          "and schedule on GPU nodes.")
@click.option("--hpa-max", type=click.IntRange(min=1), default=None,
              help="Add a HorizontalPodAutoscaler (CPU) scaling from --replicas up to this many pods.")
def k8s(path: Path, image: str | None, replicas: int | None, output: Path | None,
        network_policy: bool | None, gpu: bool, hpa_max: int | None) -> None:
    """Write Kubernetes manifests (Deployment, Service, ConfigMap, Secret references, and Ollama,
    Redis, autoscaler and NetworkPolicy when needed) for the agent at PATH: a folder, a
    workflow.yaml or a .kdeps archive."""
    from kdeps.deploy.k8s import ExportError, kubectl_secret_hint, plan_k8s, render_yaml, write_kustomize

    with tempfile.TemporaryDirectory(prefix="kdeps-export-") as scratch:
        project = _load_any(path, scratch)
        try:
            export = plan_k8s(project, image=image, replicas=replicas, network_policy=network_policy,
                              gpu=gpu, hpa_max=hpa_max)
        except ExportError as err:
            fail(f"error: {err}")
    for message in export.warnings:
        click.echo(f"warning: {message}", err=True)
    try:
        if output is None:
            click.echo(render_yaml(export), nl=False)
        elif output.suffix in (".yaml", ".yml"):
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(render_yaml(export))
            click.echo(f"Wrote {len(export.manifests)} manifest(s) to {output}", err=True)
        else:
            files = write_kustomize(export, output)
            click.echo(f"Wrote {len(files)} file(s) to {output}/ (kubectl apply -k {output})", err=True)
    except OSError as err:
        fail(f"error: cannot write {output}: {err}")
    hint = kubectl_secret_hint(export)
    if hint:
        click.echo(f"The agent reads {', '.join(export.secret_keys)} from the Secret {export.secret_name}; "
                   f"create it before applying:\n  {hint}", err=True)
