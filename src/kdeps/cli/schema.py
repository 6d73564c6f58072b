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
@click.option("--markdown", is_flag=True, help="Print the YAML reference (docs/reference.md) instead.")
def command(kind: str | None, markdown: bool) -> None:
    """Print a draft-07 JSON Schema, e.g. for yaml-language-server:
    `# yaml-language-server: $schema=./kdeps.schema.json`."""
    from kdeps.spec.schema import json_schema

    if markdown:
        from kdeps.spec.reference import render

        click.echo(render(), nl=False)
        return

    click.echo(json.dumps(json_schema(kind), indent=2, ensure_ascii=False))  # type: ignore[arg-type]
