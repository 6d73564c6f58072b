"""`kdeps` command line. Each command lives in its own module and is imported only when used,
so `kdeps --help` and `kdeps validate` start fast."""

from __future__ import annotations

import importlib

import click

from kdeps import __version__

# command name -> (module, short help); each module exposes a click command named `command`.
COMMANDS = {
    "run": ("kdeps.cli.run", "Serve an agent over HTTP, or run one request with --once."),
    "validate": ("kdeps.cli.validate", "Check a workflow and its resources; errors name file:line:col."),
    "eval": ("kdeps.cli.eval", "Evaluate expressions in a request context built from --input."),
    "schema": ("kdeps.cli.schema", "Print the JSON Schema of workflow and resource files."),
    "new": ("kdeps.cli.new", "Create a runnable agent scaffold."),
    "models": ("kdeps.cli.models", "List or pull Ollama models."),
    "package": ("kdeps.cli.package", "Pack an agent into a .kdeps archive."),
    "build": ("kdeps.cli.build", "Write a Dockerfile and compose file for an agent (and build it)."),
    "migrate": ("kdeps.cli.migrate", "Rewrite a seed-era agent into the current flat layout."),
    "bundle": ("kdeps.cli.main", "Package or build an agent (KDeps' names: bundle package, bundle build)."),
    "export": ("kdeps.cli.export", "Write Kubernetes manifests for an agent (export k8s)."),
    "doctor": ("kdeps.cli.doctor", "Run diagnostic health checks: keys, Ollama, models, port, extras."),
}

# `kdeps bundle SUB` is KDeps' spelling of `kdeps SUB`; both stay.
BUNDLE_COMMANDS = ("package", "build")


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == "bundle":
            return bundle
        if name not in COMMANDS:
            return None
        command: click.Command = importlib.import_module(COMMANDS[name][0]).command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in COMMANDS.items()])


class BundleGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(BUNDLE_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in BUNDLE_COMMANDS:
            return None
        command: click.Command = importlib.import_module(COMMANDS[name][0]).command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in BUNDLE_COMMANDS])


@click.group(cls=BundleGroup, name="bundle")
def bundle() -> None:
    """Package an agent into a .kdeps archive, or build its container image."""


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kdeps")
def cli() -> None:
    """kdeps: AI agents declared in YAML, served as an HTTP API."""


def main() -> None:
    cli()
