"""`python`: a script run in a child interpreter with a timeout; stdout parsed as JSON when it is."""

from __future__ import annotations

import sys
from typing import Any

from kdeps.actions import splice
from kdeps.actions.base import ActionContext
from kdeps.actions.process import child_env, finish, run_process
from kdeps.errors import ResourceError

DEFAULT_TIMEOUT = 60.0


async def run(ctx: ActionContext, config: Any) -> Any:
    if config.script_file:
        path = (ctx.workflow_dir / str(ctx.render(config.script_file, bare=False))).resolve()
        # A templated path may carry request data: it must stay inside the agent folder.
        templated = "{{" in str(config.script_file)
        if (templated and not path.is_relative_to(ctx.workflow_dir.resolve())) or not path.is_file():
            raise ResourceError(ctx.resource_id, f"scriptFile not found: {config.script_file}", 500)
        source = path.read_text()
    else:
        source = config.script or ""
    # KDeps splices `{{ }}` values into the code: here a value is a literal in code and escaped text
    # inside strings and f-strings, so `data = {{ get('x') }}` works for any JSON value and no input
    # becomes code (see kdeps.actions.splice).
    code = splice.python(source, lambda program: ctx.evaluate(program.source))
    args = [str(a) for a in ctx.render(list(config.args or []), bare=False)]
    result = await run_process(ctx, [sys.executable, "-I", "-c", code, *args],
                               env=child_env(ctx, getattr(config, "env", None)), cwd=str(ctx.workflow_dir),
                               timeout=float(config.timeout_duration or DEFAULT_TIMEOUT))
    return finish(ctx, result, "python script")
