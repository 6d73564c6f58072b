"""`kdeps validate PATH`: check a workflow and its resources without running anything."""

from __future__ import annotations

import sys

import click


@click.command("validate", help="Check a workflow and its resources; errors name file:line:col.")
@click.argument("path", default=".", type=click.Path())
def command(path: str) -> None:
    """Load the agent at PATH (workflow.yaml or its folder) and report every error found."""
    from kdeps.errors import KdepsError, SpecErrors
    from kdeps.spec.loader import load_project

    try:
        project = load_project(path)
    except SpecErrors as exc:
        for err in exc.errors:
            click.echo(str(err), err=True)
        count = len(exc.errors)
        click.echo(f"validation failed: {count} error{'s' if count != 1 else ''}", err=True)
        sys.exit(1)
    except KdepsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for warning in project.warnings:
        click.echo(f"warning: {warning}", err=True)
    count = len(project.resources)
    layouts = " and ".join(sorted(project.layouts)) or "no resources"
    click.echo(f"Workflow validated successfully ({count} resource{'s' if count != 1 else ''}; "
               f"layout: {layouts})")
