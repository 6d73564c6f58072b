"""Running a child process with a timeout, shared by the `exec` and `python` actions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from dataclasses import dataclass
from typing import Any

from kdeps.actions.base import ActionContext
from kdeps.errors import ResourceError
from kdeps.expr.values import TextWithFields

log = logging.getLogger("kdeps.resource")

OUTPUT_CAP = 16 * 1024 * 1024


@dataclass(slots=True)
class Completed:
    stdout: str
    stderr: str
    exit_code: int


async def run_process(ctx: ActionContext, argv: list[str], *, env: dict[str, str] | None,
                      cwd: str | None, timeout: float, stdin: bytes | None = None) -> Completed:
    """Run argv in its own process group; kill the whole group on timeout or cancellation."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd,
            start_new_session=True, limit=OUTPUT_CAP)
    except OSError as err:
        raise ResourceError(ctx.resource_id, f"cannot start {argv[0]}: {err.strerror}", 500) from None
    except ValueError:  # a NUL character cannot be passed to a program (argv or environment)
        raise ResourceError(ctx.resource_id, "a value holds a NUL character, which a command cannot take",
                            400) from None
    try:
        out, errs = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        _kill(proc)
        await proc.wait()
        raise ResourceError(ctx.resource_id, f"timed out after {timeout:g}s", 504) from None
    except asyncio.CancelledError:
        _kill(proc)
        raise
    return Completed(out[:OUTPUT_CAP].decode("utf-8", "replace"),
                     errs[:OUTPUT_CAP].decode("utf-8", "replace"), proc.returncode or 0)


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def provider_key_vars() -> set[str]:
    """Environment variables that hold LLM provider keys (each backend declares its own)."""
    from kdeps.llm.registry import backend_info, names

    return {var for name in names() if (var := backend_info(name).env_var)}


def child_env(ctx: ActionContext, extra: dict[str, Any] | None) -> dict[str, str]:
    """The agent's environment without provider API keys, plus the step's `env:`: a child process
    sees a provider key only when the author passes it there
    (`env: {OPENAI_API_KEY: "{{ get('OPENAI_API_KEY', 'env') }}"}`)."""
    env = dict(ctx.scope.state.env) if hasattr(ctx, "scope") else dict(os.environ)
    for var in (*provider_key_vars(), "KDEPS_API_AUTH_TOKEN"):  # nor the API's own token
        env.pop(var, None)
    for key, value in (extra or {}).items():
        env[str(key)] = "" if value is None else str(ctx.render(value))
    return env


def parse_stdout(text: str) -> Any:
    """stdout as JSON when it is JSON, else the text with its trailing newline removed."""
    stripped = text.strip()
    if stripped[:1] in ("{", "[", '"') or stripped in ("true", "false", "null"):
        try:
            return json.loads(stripped)
        except ValueError:
            pass
    return text.rstrip("\n")


def finish(ctx: ActionContext, result: Completed, what: str) -> Any:
    """The parsed stdout; on a non-zero exit the client gets the last line of the output (a Python
    traceback's exception line) and the server log the whole of it, with the resource's file:line."""
    ctx.record(stdout=result.stdout, stderr=result.stderr, exitCode=result.exit_code)
    if result.exit_code != 0:
        output = result.stderr.strip() or result.stdout.strip()
        last = output.splitlines()[-1].strip()[:300] if output else ""
        plan = getattr(getattr(ctx, "project", None), "resources", {}).get(ctx.resource_id)
        where = f" ({plan.file}:{plan.line})" if plan is not None else ""
        log.error("resource %s%s: %s exited with code %d:\n%s", ctx.resource_id, where, what,
                  result.exit_code, output[-8000:])
        raise ResourceError(ctx.resource_id, f"{what} exited with code {result.exit_code}: {last}", 500)
    value = parse_stdout(result.stdout)
    if isinstance(value, str):
        # the text, which also answers KDeps' result object: get('cmd').stdout, .exitCode, ...
        return TextWithFields(value, {"stdout": result.stdout, "stderr": result.stderr,
                                      "exitCode": result.exit_code, "success": True, "timedOut": False,
                                      "result": result.stdout})
    return value
