"""`kdeps package`: pack an agent into `<name>-<version>.kdeps` (secrets left out)."""

from __future__ import annotations

from pathlib import Path

import click

from kdeps.cli.common import fail, load


@click.command(name="package")
@click.argument("path", default=".", type=click.Path(exists=True))
@click.option("--output", "-o", "output", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder to write the archive to.")
@click.option("--name", default=None, help="Archive name (default: the workflow's metadata.name).")
def command(path: str, output: Path, name: str | None) -> None:
    """Validate the agent at PATH (a folder or its workflow.yaml) and pack it into a .kdeps archive."""
    from kdeps.deploy.package import PackageError, package_project

    project = load(path)
    try:
        archive, files = package_project(project, output, name)
    except (PackageError, OSError) as err:
        fail(f"error: cannot write the package: {err}")
    for rel in files.skipped_secrets:
        click.echo(f"warning: skipped {rel}: it looks like a secret (keys, .env files never go "
                   "into a package)", err=True)
    for message in files.warnings:
        click.echo(f"warning: {message}", err=True)
    for rel in files.skipped_links:
        click.echo(f"warning: skipped {rel}: a link that leaves the agent folder", err=True)
    click.echo(f"Packaged {len(files.files)} file(s) into {archive}")
