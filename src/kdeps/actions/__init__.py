"""Actions a resource can run. Each module has `async def run(ctx, config) -> output`;
modules are imported on first use so start-up stays fast."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any

from kdeps.actions.base import ActionContext

Action = Callable[[ActionContext, Any], Awaitable[Any]]

# run-block attribute -> module implementing it
MODULES = {
    "chat": "kdeps.actions.chat",
    "http_client": "kdeps.actions.http_client",
    "python": "kdeps.actions.python",
    "exec": "kdeps.actions.exec",
    "api_response": "kdeps.actions.api_response",
}
_loaded: dict[str, Action] = {}


def get_action(kind: str) -> Action:
    action = _loaded.get(kind)
    if action is None:
        action = _loaded[kind] = importlib.import_module(MODULES[kind]).run
    return action
