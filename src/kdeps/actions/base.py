"""What an action sees of the engine while it runs for one resource and one request."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kdeps.engine.request import RequestData


class ActionContext(Protocol):
    resource_id: str
    workflow_dir: Path  # the folder holding workflow.yaml; relative paths resolve against it
    request: RequestData
    project: Any  # kdeps.spec.Project
    log: logging.Logger

    def render(self, value: Any, *, bare: bool = True) -> Any:
        """`{{ }}` templates and bare expressions in `value`, evaluated for this resource and request."""

    def evaluate(self, source: str) -> Any:
        """One expression evaluated for this resource and request."""

    def env(self, name: str) -> str | None:
        """An environment variable as the agent sees it (agentSettings.env overlaid on os.environ)."""

    async def run_tool(self, action_id: str, arguments: dict[str, Any]) -> Any:
        """Run another resource (a tool) with `arguments` visible through get('<name>'); its output."""

    def remember(self, key: str, value: Any) -> None:
        """`set(key, value)` in this request's memory (chat keeps tool-call arguments there)."""

    def record(self, **meta: Any) -> None:
        """Attach metadata to this resource's output (llm.usage/llm.prompt, http status/headers, ...)."""

    def deadline(self) -> float | None:
        """The loop.time() by which this action must finish, or None."""

    async def emit(self, event: dict[str, Any]) -> bool:
        """Send a streaming event to the client when this resource feeds a streamed response.
        Returns False (and does nothing) when nobody is streaming."""
