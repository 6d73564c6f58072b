"""`apiResponse`: the body, status and headers the API answers with."""

from __future__ import annotations

from typing import Any

from kdeps.actions.base import ActionContext


async def run(ctx: ActionContext, config: Any) -> dict[str, Any]:
    success = ctx.render(config.success if config.success is not None else True)
    body: dict[str, Any] = {"success": bool(success), "data": ctx.render(config.response)}
    headers = {str(k): _header_text(v) for k, v in ctx.render(dict(config.headers)).items()}
    meta = config.meta
    if meta is not None:
        rendered = ctx.render(meta.model_dump(by_alias=True, exclude_none=True)
                              if hasattr(meta, "model_dump") else meta)
        headers.update({str(k): _header_text(v) for k, v in (rendered.pop("headers", None) or {}).items()})
        if rendered:
            body["meta"] = rendered
    status = getattr(config, "status_code", None)
    status = int(ctx.render(status)) if status is not None else (200 if body["success"] else 500)
    ctx.record(api_response={"status": status, "headers": headers})
    return body


def _header_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
