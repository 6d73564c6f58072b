"""`python`: a script run in a child interpreter with a timeout; stdout parsed as JSON when it is."""

from __future__ import annotations

import json
import sys
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
    # KDeps splices `{{ }}` values into the code. Here each value becomes a Python literal (or, inside
    # quotes, escaped text), so `data = {{ get('x') }}` works for any JSON value and cannot inject code.
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
        before, after = source[start - 1:start], source[end + 2:end + 3]
        if before == after and before in ("'", '"'):
            out.append(_escaped(value, before))  # inside a string literal: stay inside it
        else:
            out.append(_literal(value))
        pos = end + 2
    out.append(source[pos:])
    return "".join(out)


def _escaped(value: Any, quote: str) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    inner = json.dumps(text)[1:-1]  # JSON string escapes are valid Python escapes
    return inner.replace("'", "\\'") if quote == "'" else inner


def _literal(value: Any) -> str:
    # A value spliced into code becomes an expression that rebuilds it, so no input can inject code.
    return f"__import__('json').loads({json.dumps(json.dumps(value, default=str))})"
