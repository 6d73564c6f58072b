"""`exec`: a shell command (or a program with args) with a timeout."""

from __future__ import annotations

from typing import Any

from kdeps.actions import splice
from kdeps.actions.base import ActionContext
from kdeps.actions.process import child_env, finish, run_process

DEFAULT_TIMEOUT = 60.0


async def run(ctx: ActionContext, config: Any) -> Any:
    # Each `{{ }}` value is one shell word wherever the author put it (see kdeps.actions.splice).
    command = splice.shell(str(config.command), lambda program: ctx.evaluate(program.source))
    args = [str(a) for a in ctx.render(list(config.args or []), bare=False)]
    if args:
        command += ' "$@"'  # args reach the command as positional parameters, never re-parsed
    argv = ["/bin/sh", "-c", command, "sh", *args]
    cwd = ctx.render(config.working_dir, bare=False) if getattr(config, "working_dir", None) else None
    if cwd:
        cwd = str((ctx.workflow_dir / cwd).resolve())
    result = await run_process(ctx, argv, env=child_env(ctx, config.env), cwd=cwd or str(ctx.workflow_dir),
                               timeout=float(config.timeout_duration or DEFAULT_TIMEOUT))
    return finish(ctx, result, "command")
