"""The KDeps YAML language: models of workflow.yaml and resource files, and the project loader.

`from kdeps.spec import load_project, Project` loads an agent folder; every error names file:line:col.
Backend names and unit parsers load without pydantic; models and the loader are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kdeps.spec.backends import BACKENDS, DEFAULT_BACKEND
from kdeps.spec.units import parse_byte_size, parse_duration

if TYPE_CHECKING:
    from kdeps.spec.loader import Project, find_workflow_file, load_project
    from kdeps.spec.models import (
        AgentSettings,
        ApiResponse,
        ApiServer,
        Chat,
        Exec,
        HttpClient,
        OnError,
        Python,
        Resource,
        Run,
        Settings,
        Tool,
        Workflow,
    )

_LAZY = {
    "load_project": "kdeps.spec.loader",
    "find_workflow_file": "kdeps.spec.loader",
    "Project": "kdeps.spec.loader",
}
_MODELS = (
    "AgentSettings",
    "ApiResponse",
    "ApiServer",
    "Chat",
    "Exec",
    "HttpClient",
    "OnError",
    "Python",
    "Resource",
    "Run",
    "Settings",
    "Tool",
    "Workflow",
)

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "AgentSettings",
    "ApiResponse",
    "ApiServer",
    "Chat",
    "Exec",
    "HttpClient",
    "OnError",
    "Project",
    "Python",
    "Resource",
    "Run",
    "Settings",
    "Tool",
    "Workflow",
    "find_workflow_file",
    "load_project",
    "parse_byte_size",
    "parse_duration",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY or name in _MODELS:
        import importlib

        module = importlib.import_module(_LAZY.get(name, "kdeps.spec.models"))
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kdeps.spec' has no attribute {name!r}")
