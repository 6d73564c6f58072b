"""`httpClient`: an outbound HTTP call with auth, retries and a timeout. The body is parsed as JSON
when the answer is JSON; status and headers are kept for `http.responseHeader(...)`."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from typing import Any

import aiohttp

from kdeps.actions.base import ActionContext
from kdeps.errors import ResourceError

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRY_ON = frozenset({408, 429, 500, 502, 503, 504})
BODY_CAP = 32 * 1024 * 1024


async def run(ctx: ActionContext, config: Any) -> Any:
    from kdeps.llm.transport import get_session

    method = str(ctx.render(config.method or "GET", bare=False)).upper()
    url = str(ctx.render(config.url, bare=False))
    headers = {str(k): str(v) for k, v in (ctx.render(config.headers or {}) or {}).items()}
    params = ctx.render(getattr(config, "params", None) or {}) or {}
    _apply_auth(ctx, config.auth, headers)
    data = ctx.render(config.data) if config.data is not None else None
    body: bytes | None = None
    if data is not None:
        if isinstance(data, str | bytes):
            body = data.encode() if isinstance(data, str) else data
        else:
            body = json.dumps(data).encode()
            headers.setdefault("Content-Type", "application/json")
    timeout = float(config.timeout_duration or DEFAULT_TIMEOUT)
    retry = config.retry
    attempts = max(1, int(getattr(retry, "max_attempts", None) or 1)) if retry else 1
    delay = float(getattr(retry, "backoff", None) or 1.0) if retry else 1.0
    max_delay = float(getattr(retry, "max_backoff", None) or 30.0) if retry else 30.0
    retry_on = set(getattr(retry, "retry_on", None) or DEFAULT_RETRY_ON) if retry else set()
    follow = True if config.follow_redirects is None else bool(config.follow_redirects)
    session = get_session()
    for attempt in range(1, attempts + 1):
        try:
            async with session.request(method, url, headers=headers, params=params, data=body,
                                       allow_redirects=follow,
                                       timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                raw = await resp.content.read(BODY_CAP + 1)
                if len(raw) > BODY_CAP:
                    raise ResourceError(ctx.resource_id, f"response from {url} is over {BODY_CAP} bytes", 502)
                status, resp_headers = resp.status, dict(resp.headers)
                content_type = resp.headers.get("Content-Type", "")
        except TimeoutError:
            failure = ResourceError(ctx.resource_id, f"{method} {url} timed out after {timeout:g}s", 504)
        except aiohttp.ClientError as err:
            failure = ResourceError(ctx.resource_id, f"{method} {url} failed: {err}", 502)
        else:
            if status in retry_on and attempt < attempts:
                failure = ResourceError(ctx.resource_id, f"{method} {url} answered HTTP {status}", 502)
            else:
                parsed = _decode(raw, content_type)
                ctx.record(body=parsed, headers=resp_headers, statusCode=status)
                return parsed
        if attempt == attempts:
            raise failure
        wait = min(max_delay, delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        ctx.log.warning("%s; retry %d/%d in %.2fs", failure.message, attempt, attempts - 1, wait)
        await asyncio.sleep(wait)
    raise AssertionError("unreachable")


def _apply_auth(ctx: ActionContext, auth: Any, headers: dict[str, str]) -> None:
    if auth is None:
        return
    kind = (auth.type or "bearer").lower()
    if kind in ("bearer", "oauth2"):
        headers["Authorization"] = f"Bearer {ctx.render(auth.token, bare=True)}"
    elif kind == "basic":
        pair = f"{ctx.render(auth.username)}:{ctx.render(auth.password)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    elif kind == "api_key":
        headers[str(ctx.render(auth.key) or "X-API-Key")] = str(ctx.render(auth.value))


def _decode(raw: bytes, content_type: str) -> Any:
    text = raw.decode("utf-8", "replace")
    if "json" in content_type or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text
