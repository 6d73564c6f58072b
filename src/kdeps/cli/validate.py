"""`kdeps validate PATH`: check a workflow and its resources without running anything.

Exit status as KDeps documents it: 0 valid, 2 validation errors, 1 anything else (no such path).
Each error names file:line:col, and is worded the way KDeps users know (`X is required`,
`Available options: [...]`, `Expected type: ... Example: ...`), keeping our did-you-mean hints.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import click

from kdeps.errors import SpecError

EXIT_INVALID = 2

# Example values shown after a type error or a missing key, by YAML key.
_EXAMPLES = {
    "apiVersion": "kdeps.io/v1",
    "kind": "Workflow",
    "actionId": "response",
    "targetActionId": "response",
    "name": "my-agent",
    "version": '"1.0.0"',
    "prompt": "\"{{ get('q') }}\"",
    "model": "llama3.2:1b",
    "url": "https://api.example.com/items",
    "script": "print('hello')",
    "command": "echo hello",
    "path": "/api/v1/chat",
    "portNum": "16395",
    "hostIp": '"127.0.0.1"',
    "methods": "[GET, POST]",
    "success": "true",
    "timeout": "30s",
    "timeoutDuration": "30s",
}
_TYPE_WORDS = {
    "a string": ("string", '"text"'),
    "an integer": ("integer", "10"),
    "a number": ("number", "0.7"),
    "true or false": ("boolean", "true"),
    "a mapping": ("object", "{key: value}"),
    "a list": ("array", "[a, b]"),
}
_MISSING = re.compile(r"^missing required key '([^']+)'(?: in (.+))?$")
_ONE_OF = re.compile(r"; expected one of: (.+)$")
_TYPE = re.compile(r"^(?P<where>[\w.\[\]]+): expected (?P<type>a string|an integer|a number|true or false|"
                   r"a mapping|a list), got (?P<got>.+)$")
_ROUTE = re.compile(r"^(?P<where>[\w.\[\]]+): must start with '/', got (?P<got>.+)$")


def describe(err: SpecError) -> str:
    """`err` as shown to a user: file:line:col, the message in KDeps' words, and any did-you-mean."""
    message = err.message
    if m := _MISSING.match(message):
        key, parent = m.group(1), m.group(2)
        message = f"{key} is required" + (f" (in {parent})" if parent else "")
        if key in _EXAMPLES:
            message += f". Example: {key}: {_EXAMPLES[key]}"
    elif m := _ONE_OF.search(message):
        message = message[: m.start()] + f". Available options: [{m.group(1)}]"
    elif m := _TYPE.match(message):
        type_name, fallback = _TYPE_WORDS[m.group("type")]
        key = re.sub(r"\[\d+\]$", "", m.group("where")).rsplit(".", 1)[-1]
        message += f". Expected type: {type_name}. Example: {key}: {_EXAMPLES.get(key, fallback)}"
    elif m := _ROUTE.match(message):
        message = f"{m.group('where')}: Must start with '/', got {m.group('got')}. Example: /api/v1/chat"
    return str(SpecError(message, err.file, err.line, err.col, err.suggestion))


def _unpack(archive: Path, scratch: Path) -> Path:
    from kdeps.deploy.package import PackageError, extract_archive

    try:
        return extract_archive(archive, scratch / "agent")
    except PackageError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def exit_code(errors: list[SpecError]) -> int:
    """2 when the agent was read and is invalid; 1 when there was nothing to read."""
    return EXIT_INVALID if any(e.file for e in errors) else 1


@click.command("validate", help="Check a workflow and its resources (schema, references, expressions); "
                                "errors name file:line:col. PATH may also be a .kdeps package.")
@click.argument("path", default=".", type=click.Path())
def command(path: str) -> None:
    """Load the agent at PATH (workflow.yaml, its folder, or a .kdeps package) and report every error."""
    import tempfile

    from kdeps.errors import KdepsError, SpecErrors
    from kdeps.spec.loader import load_project

    with tempfile.TemporaryDirectory(prefix="kdeps-validate-") as scratch:
        archive = Path(path).suffix == ".kdeps" and Path(path).is_file()
        unpacked = _unpack(Path(path), Path(scratch)) if archive else None

        def located(err: SpecError) -> SpecError:
            if unpacked and err.file.startswith(str(unpacked)):  # name files inside the package
                err.file = path + err.file[len(str(unpacked)):]
            return err

        try:
            project = load_project(unpacked or path)
        except SpecErrors as exc:
            for err in exc.errors:
                click.echo(describe(located(err)), err=True)
            count = len(exc.errors)
            click.echo(f"validation failed: {count} error{'s' if count != 1 else ''}", err=True)
            sys.exit(exit_code(exc.errors))
        except KdepsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        for warning in project.warnings:
            click.echo(f"warning: {located(warning)}", err=True)
        for line in _unset_keys(project):
            click.echo(f"warning: {line}", err=True)
    count = len(project.resources)
    layouts = " and ".join(sorted(project.layouts)) or "no resources"
    click.echo(f"Validation successful ({count} resource{'s' if count != 1 else ''}; layout: {layouts})")


def _unset_keys(project: Any) -> list[str]:
    """A used backend whose key variable is unset: the first request would fail (503)."""
    from kdeps.deploy.usage import key_users
    from kdeps.engine.scope import agent_env

    env = agent_env(getattr(project.workflow.settings.agent_settings, "env", None))
    out = []
    for var, backends in sorted(key_users(project, env).items()):
        if not (env.get(var) or "").strip():
            users = ", ".join(sorted({r for rs in backends.values() for r in rs}))
            out.append(f"{var} is not set; backend {', '.join(sorted(backends))} (used by {users}) "
                       "will answer 503 until it is")
    return out
