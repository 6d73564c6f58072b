"""`kdeps run`: serve an agent, or answer one request in-process with --once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from kdeps.cli.common import dump, fail, load, parse_inputs


@click.command(name="run")
@click.argument("path", default=".", type=click.Path(exists=True))
@click.option("--once", is_flag=True, help="Run one request in-process and print the response as JSON.")
@click.option("--input", "inputs", multiple=True, metavar="KEY=VALUE",
              help="Request input for --once (repeatable); JSON values are decoded.")
@click.option("--method", default=None, help="HTTP method for --once (default: the first route's).")
@click.option("--route", default=None, help="Route path for --once (default: the first route).")
@click.option("--host", default=None, help="Bind address (default: apiServer.hostIp or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: apiServer.portNum or 3000).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--dev", is_flag=True,
              help="Swap in each saved edit; after a broken edit the last good version keeps serving.")
@click.option("--openai", "openai_compat", is_flag=True,
              help="Also serve an OpenAI-compatible /v1/chat/completions endpoint.")
@click.option("--ui", is_flag=True,
              help="Serve the playground at / and the API docs at /docs (on with --dev).")
@click.option("--pull-models", is_flag=True, help="Pull agentSettings.models into Ollama before serving.")
@click.option("--verbose", "-v", is_flag=True, help="Log each resource's status and duration per request.")
@click.option("--debug", is_flag=True, help="Log everything (also: KDEPS_DEBUG=1).")
@click.option("--log-format", type=click.Choice(["auto", "text", "json"]), default="auto", show_default=True,
              help="Log lines as text or JSON; auto: text on a terminal, JSON otherwise.")
def command(path: str, once: bool, inputs: tuple[str, ...], method: str | None, route: str | None,
            host: str | None, port: int | None, workers: int, dev: bool, openai_compat: bool,
            pull_models: bool, ui: bool, verbose: bool, debug: bool, log_format: str) -> None:
    """Serve the agent at PATH (a workflow.yaml, its folder or a .kdeps package) as an HTTP API."""
    with contextlib.ExitStack() as stack:
        if path.endswith(".kdeps") and os.path.isfile(path):
            path = _unpack(path, stack.enter_context(tempfile.TemporaryDirectory(prefix="kdeps-run-")))
        _command(path, once, inputs, method, route, host, port, workers, dev, openai_compat, pull_models,
                 ui, verbose, debug, log_format)


def _unpack(archive: str, scratch: str) -> str:
    """A .kdeps package unpacked into `scratch` (kept while the agent runs)."""
    from kdeps.deploy.package import PackageError, extract_archive

    try:
        return str(extract_archive(Path(archive), Path(scratch) / "agent"))
    except PackageError as err:
        fail(f"error: {err}")


def _command(path: str, once: bool, inputs: tuple[str, ...], method: str | None, route: str | None,
             host: str | None, port: int | None, workers: int, dev: bool, openai_compat: bool,
             pull_models: bool, ui: bool, verbose: bool, debug: bool, log_format: str) -> None:
    # --dev starts even with mistakes in the agent: it answers 503 naming them until they are fixed
    project = None if dev and not once and not pull_models else load(path)
    for warning in getattr(project, "warnings", None) or []:
        click.echo(f"warning: {warning}", err=True)
    if pull_models:
        from kdeps.cli.models import pull_all

        pull_all(project)
    from kdeps.logs import level_from_env

    log_level = level_from_env("debug" if debug else "verbose" if verbose else "info")
    if once:
        _log_without_tracebacks(log_level)
        try:
            status = asyncio.run(_once(project, parse_inputs(inputs), method, route))
        except KeyboardInterrupt:
            raise SystemExit(130) from None
        raise SystemExit(0 if status < 400 else 1)
    if inputs:
        fail("error: --input is only for --once")
    from kdeps.server import serve

    serve(path, host=host, port=port, workers=workers, dev=dev, openai_compat=openai_compat, project=project,
          ui=ui, log_level=log_level, log_format=log_format)


async def _once(project: Any, inputs: dict[str, Any], method: str | None, route: str | None) -> int:
    """Answer one request in-process: stdout gets the JSON body the server would send (an error
    body too), stderr a one-line summary of an error; never a traceback. Returns the HTTP status."""
    from kdeps.engine import Engine, RequestData

    api = project.workflow.settings.api_server if project.workflow.settings else None
    routes = list(getattr(api, "routes", None) or [])
    first = routes[0] if routes else None
    path = route or (first.path if first else "/")
    verb = (method or (first.methods[0] if first and first.methods else "POST")).upper()
    request = RequestData(method=verb, path=path, route=path, body=inputs if verb != "GET" else None,
                          query=inputs if verb == "GET" else {}, headers={"content-type": "application/json"},
                          client_ip="127.0.0.1")
    try:
        response = await Engine(project).handle(request)
    finally:
        from kdeps.llm.transport import aclose

        with contextlib.suppress(Exception):
            await aclose()
    click.echo(dump(response.body) if not isinstance(response.body, str) else json.dumps(response.body))
    if response.status >= 400:
        error = response.body.get("error", {}) if isinstance(response.body, dict) else {}
        error = error if isinstance(error, dict) else {"message": error}
        resource = error.get("resource") or error.get("resourceId")
        where = f" in resource '{resource}'" if resource else ""
        click.echo(f"error (HTTP {response.status}){where}: {error.get('message', response.body)}",
                   err=True)
    return response.status


class _NoTraceback(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        return ""

    def formatStack(self, stack_info: str) -> str:
        return ""


def _log_without_tracebacks(level: str = "info") -> None:
    """--once is a command a person reads: log warnings and errors as one line each on stderr (with
    --verbose each resource's status and duration too; with --debug everything, tracebacks included)."""
    handler = logging.StreamHandler()
    fmt = "kdeps: %(levelname)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt) if level == "debug" else _NoTraceback(fmt))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    if level == "verbose":
        logging.getLogger("kdeps.run").setLevel(logging.INFO)
