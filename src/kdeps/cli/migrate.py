"""`kdeps migrate PATH`: rewrite a seed-era agent into the current flat layout (`kdeps.migrate`)."""

from __future__ import annotations

import difflib
import shutil
import sys
from pathlib import Path

import click

from kdeps.migrate import MigrationError, migrate_agent


@click.command(name="migrate")
@click.argument("path", default=".", type=click.Path(exists=True, path_type=Path))
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the migrated agent to DIR; the original is left untouched.")
@click.option("--dry-run", is_flag=True, help="Print a unified diff of the changes; write nothing.")
def command(path: Path, output: Path | None, dry_run: bool) -> None:
    """Rewrite the seed-era agent at PATH (metadata:/run: resources) into the current flat layout.
    In place by default, keeping each changed file's original as FILE.bak."""
    try:
        results = migrate_agent(path)
    except (MigrationError, OSError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    root = results[0].path.parent
    for result in results:
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
    changed = [r for r in results if r.changed]
    if dry_run:
        for r in changed:
            rel = r.path.relative_to(root).as_posix()
            sys.stdout.writelines(difflib.unified_diff(
                r.original.splitlines(keepends=True), r.migrated.splitlines(keepends=True),
                f"a/{rel}", f"b/{rel}"))
        click.echo(f"{len(changed)} of {len(results)} file(s) would change.", err=True)
        return
    if output is not None:
        if output.exists() and any(output.iterdir()):
            click.echo(f"error: --output {output} exists and is not empty", err=True)
            sys.exit(1)
        shutil.copytree(root, output, dirs_exist_ok=True)
        for r in changed:
            (output / r.path.relative_to(root)).write_text(r.migrated, encoding="utf-8")
        click.echo(f"Migrated {len(changed)} of {len(results)} file(s) into {output}.")
        return
    if not changed:
        click.echo("Already in the current layout; nothing to do.")
        return
    for r in changed:
        shutil.copy2(r.path, r.path.with_name(r.path.name + ".bak"))
        r.path.write_text(r.migrated, encoding="utf-8")
        click.echo(f"migrated {r.path.relative_to(root).as_posix()} (original kept as {r.path.name}.bak)")
