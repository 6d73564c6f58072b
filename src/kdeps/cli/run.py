"""`kdeps run`: serve an agent, or answer one request in-process with --once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
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
@click.option("--dev", is_flag=True, help="Reload when YAML files change.")
@click.option("--openai", "openai_compat", is_flag=True,
              help="Also serve an OpenAI-compatible /v1/chat/completions endpoint.")
@click.option("--ui", is_flag=True,
              help="Serve the playground at / and the API docs at /docs (on with --dev).")
@click.option("--pull-models", is_flag=True, help="Pull agentSettings.models into Ollama before serving.")
def command(path: str, once: bool, inputs: tuple[str, ...], method: str | None, route: str | None,
            host: str | None, port: int | None, workers: int, dev: bool, openai_compat: bool,
            pull_models: bool, ui: bool) -> None:
    """Serve the agent at PATH (a workflow.yaml or its folder) as an HTTP API."""
    project = load(path)
    if pull_models:
        from kdeps.cli.models import pull_all

        pull_all(project)
    if once:
        _log_without_tracebacks()
        try:
            status = asyncio.run(_once(project, parse_inputs(inputs), method, route))
        except KeyboardInterrupt:
            raise SystemExit(130) from None
        raise SystemExit(0 if status < 400 else 1)
    if inputs:
        fail("error: --input is only for --once")
    from kdeps.server import serve

    serve(path, host=host, port=port, workers=workers, dev=dev, openai_compat=openai_compat, project=project,
          ui=ui)


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
    detail = None
    try:
        response = await Engine(project).handle(request)
    except Exception as exc:  # what the server answers for an error escaping the engine
        response, detail = _failure(exc, request)
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
        click.echo(f"error (HTTP {response.status}){where}: {detail or error.get('message', response.body)}",
                   err=True)
    return response.status


def _failure(exc: Exception, request: Any) -> tuple[Any, str | None]:
    """The server's answer for an exception escaping the engine, and the detail stderr shows for an
    unexpected one (the server logs it; a person running --once wants it on the spot)."""
    from kdeps.engine.request import ResponseData
    from kdeps.engine.validation import error_body as validation_body
    from kdeps.errors import InputValidationError, KdepsError
    from kdeps.server.streaming import error_body, failure

    if isinstance(exc, InputValidationError):
        return ResponseData(exc.status, validation_body(exc, request)), None
    if isinstance(exc, KdepsError):
        return failure(exc, request.request_id), None
    body = error_body("internal server error", requestId=request.request_id)
    return ResponseData(500, body), f"internal error: {type(exc).__name__}: {exc}"


class _NoTraceback(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        return ""

    def formatStack(self, stack_info: str) -> str:
        return ""


def _log_without_tracebacks() -> None:
    """--once is a command a person reads: log warnings and errors as one line each on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(_NoTraceback("kdeps: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
