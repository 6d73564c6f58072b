"""`kdeps schema`: print the JSON Schema of workflow and resource files."""

from __future__ import annotations

import json

import click


@click.command("schema", help="Print the JSON Schema of workflow and resource files.")
@click.option(
    "--kind",
    type=click.Choice(["workflow", "resource"]),
    default=None,
    help="Schema of one kind of file (default: both, chosen by the document's `kind`).",
)
def command(kind: str | None) -> None:
    """Print a draft-07 JSON Schema, e.g. for yaml-language-server:
    `# yaml-language-server: $schema=./kdeps.schema.json`."""
    from kdeps.spec.schema import json_schema

    click.echo(json.dumps(json_schema(kind), indent=2, ensure_ascii=False))  # type: ignore[arg-type]
