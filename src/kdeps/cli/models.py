"""`kdeps models`: list and pull Ollama models (GET /api/tags, streamed POST /api/pull)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import click

DEFAULT_URL = "http://localhost:11434"
_url_option = click.option("--url", default=None, metavar="URL",
                           help=f"Ollama URL (default: $OLLAMA_HOST or {DEFAULT_URL}).")


def ollama_url(url: str | None) -> str:
    url = url or os.environ.get("OLLAMA_HOST") or DEFAULT_URL
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


@click.group(name="models")
def command() -> None:
    """List or pull Ollama models."""


@command.command(name="list")
@_url_option
def list_models(url: str | None) -> None:
    """Models the Ollama server already has."""
    base = ollama_url(url)
    data = _request(base, "GET", "/api/tags")
    models = data.get("models") or []
    if not models:
        click.echo(f"No models on {base}. Pull one with: kdeps models pull llama3.2:1b")
        return
    width = max(len(m.get("name", "")) for m in models)
    for model in models:
        size = model.get("size") or 0
        modified = model.get("modified_at", "")[:19]
        click.echo(f"{model.get('name', ''):<{width}}  {size / 1e9:6.2f} GB  {modified}")


@command.command(name="pull")
@click.argument("names", nargs=-1, required=True)
@_url_option
def pull_models(names: tuple[str, ...], url: str | None) -> None:
    """Download NAMES into the Ollama server, with a progress bar."""
    base = ollama_url(url)
    for name in names:
        pull(base, name)


def pull_all(project: Any) -> None:
    """Pull every agentSettings.models entry into the workflow's Ollama (for `kdeps run --pull-models`)."""
    agent = project.workflow.settings.agent_settings if project.workflow.settings else None
    models = list(getattr(agent, "models", None) or [])
    base = ollama_url(getattr(agent, "ollama_url", None))
    for name in models:
        pull(base, name)


def pull(base: str, name: str) -> None:
    bar = _Progress(sys.stderr.isatty())
    for event in _stream(base, "/api/pull", {"model": name, "stream": True}):
        if event.get("error"):
            bar.close()
            raise click.ClickException(f"pull {name} failed: {event['error']}")
        bar.update(name, event)
    bar.close()
    click.echo(f"{name}: ready")


class _Progress:
    """One status line per layer; on a terminal it redraws in place with a bar."""

    def __init__(self, tty: bool) -> None:
        self.tty, self.last = tty, ""

    def update(self, name: str, event: dict[str, Any]) -> None:
        status = str(event.get("status", ""))
        total, done = event.get("total") or 0, event.get("completed") or 0
        if total:
            frac = min(1.0, done / total)
            bar = "#" * int(frac * 30)
            sizes = f"{done / 1e6:7.1f}/{total / 1e6:.1f} MB"
            line = f"{name}: {status[:24]:<24} [{bar:<30}] {frac:4.0%} {sizes}"
        else:
            line = f"{name}: {status}"
        if self.tty:
            click.echo("\r" + line.ljust(len(self.last)), nl=False, err=True)
        elif status != self.last.split(": ", 1)[-1].split(" [")[0].strip():
            click.echo(line, err=True)
        self.last = line

    def close(self) -> None:
        if self.tty and self.last:
            click.echo(err=True)


def _open(base: str, method: str, path: str, body: dict[str, Any] | None, timeout: float) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as err:
        detail = err.read().decode("utf-8", "replace")
        with contextlib.suppress(ValueError):
            detail = json.loads(detail).get("error", detail)
        raise click.ClickException(f"Ollama at {base} answered HTTP {err.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise click.ClickException(
            f"cannot reach Ollama at {base} ({reason}). Start it with `ollama serve`, "
            "or pass --url / set OLLAMA_HOST.") from None


def _request(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    with _open(base, method, path, body, timeout=30) as resp:
        answer: dict[str, Any] = json.loads(resp.read() or b"{}")
        return answer


def _stream(base: str, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    with _open(base, "POST", path, body, timeout=600) as resp:
        for line in resp:
            line = line.strip()
            if line:
                yield json.loads(line)
