"""`python`: a script run in a child interpreter with a timeout; stdout parsed as JSON when it is."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kdeps.actions.base import ActionContext
from kdeps.actions.process import child_env, finish, run_process
from kdeps.errors import ResourceError

DEFAULT_TIMEOUT = 60.0


async def run(ctx: ActionContext, config: Any) -> Any:
    if config.script_file:
        path = (ctx.workflow_dir / str(ctx.render(config.script_file, bare=False))).resolve()
        if not path.is_file():
            raise ResourceError(ctx.resource_id, f"scriptFile not found: {path}", 500)
        source = path.read_text()
    else:
        source = config.script or ""
    # KDeps splices `{{ }}` values straight into the code: render non-strings as Python literals
    # so `data = {{ get('x') }}` yields valid Python for dicts, lists, booleans and nil.
    code = _render_python(ctx, source)
    args = [str(a) for a in ctx.render(list(config.args or []), bare=False)]
    result = await run_process(ctx, [sys.executable, "-I", "-c", code, *args],
                               env=child_env(ctx, getattr(config, "env", None)), cwd=str(ctx.workflow_dir),
                               timeout=float(config.timeout_duration or DEFAULT_TIMEOUT))
    return finish(ctx, result, "python script")


def _render_python(ctx: ActionContext, source: str) -> str:
    if "{{" not in source:
        return source
    out: list[str] = []
    pos = 0
    while (start := source.find("{{", pos)) != -1:
        end = source.find("}}", start + 2)
        if end == -1:
            break
        out.append(source[pos:start])
        value = ctx.evaluate(source[start + 2:end].strip())
        out.append(value if isinstance(value, str) else _literal(value))
        pos = end + 2
    out.append(source[pos:])
    return "".join(out)


def _literal(value: Any) -> str:
    # json.loads(...) of a JSON literal is always a safe Python expression.
    return f"__import__('json').loads({json.dumps(json.dumps(value, default=str))})"
