"""The HTTP API server: `create_app` builds the ASGI app, `serve` runs it (what `kdeps run` calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["create_app", "serve"]


def serve(path: str | Path, host: str | None = None, port: int | None = None, workers: int = 1,
          dev: bool = False, **opts: Any) -> None:
    """Serve the agent at `path`. Options: openai_compat, max_body, max_concurrency, log_level, project."""
    from kdeps.server.runner import serve as _serve

    _serve(path, host, port, workers, dev, **opts)


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from kdeps.server.app import create_app

        return create_app
    raise AttributeError(name)
