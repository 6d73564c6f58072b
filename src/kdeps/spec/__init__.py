"""The KDeps YAML language: models of workflow.yaml and resource files, and the project loader.

`from kdeps.spec import load_project, Project` loads an agent folder; every error names file:line:col.
Backend names and unit parsers load without pydantic; the loader (and the models: `spec/workflow.py`,
`spec/resources.py`, `spec/actions.py`) is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kdeps.spec.backends import BACKENDS, DEFAULT_BACKEND
from kdeps.spec.units import parse_byte_size, parse_duration

if TYPE_CHECKING:
    from kdeps.spec.loader import Project, find_workflow_file, load_project

_LAZY = ("Project", "find_workflow_file", "load_project")

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "Project",
    "find_workflow_file",
    "load_project",
    "parse_byte_size",
    "parse_duration",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from kdeps.spec import loader

        value = getattr(loader, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kdeps.spec' has no attribute {name!r}")
