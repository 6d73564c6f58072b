"""Typed errors shown to users. None of them carries a traceback to the user or an API key."""

from __future__ import annotations

from typing import Any


class KdepsError(Exception):
    """Base of every error kdeps reports to a user."""


class SpecError(KdepsError):
    """A mistake in workflow.yaml or a resource file, located at file:line:col."""

    def __init__(self, message: str, file: str = "", line: int = 0, col: int = 0,
                 suggestion: str | None = None) -> None:
        self.message, self.file, self.line, self.col, self.suggestion = message, file, line, col, suggestion
        super().__init__(str(self))

    def __str__(self) -> str:
        if not self.file:
            where = ""
        elif self.line:
            where = f"{self.file}:{self.line}:{self.col}: "
        else:
            where = f"{self.file}: "
        hint = f" (did you mean '{self.suggestion}'?)" if self.suggestion else ""
        return f"{where}{self.message}{hint}"


class SpecErrors(KdepsError):
    """Several spec errors found in one load; str() lists them all, one per line."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class ExprError(KdepsError):
    """An expression that does not parse or fails while evaluating; shows the source and position."""

    def __init__(self, message: str, source: str = "", pos: int | None = None) -> None:
        self.message, self.source, self.pos = message, source, pos
        super().__init__(str(self))

    def __str__(self) -> str:
        if not self.source:
            return self.message
        text = f"{self.message}\n  {self.source}"
        if self.pos is not None:
            text += "\n  " + " " * self.pos + "^"
        return text


class ResourceError(KdepsError):
    """A resource failed while running a request. `status` is the HTTP status the API answers with."""

    def __init__(self, resource: str, message: str, status: int = 502) -> None:
        self.resource, self.message, self.status = resource, message, status
        super().__init__(f"resource '{resource}': {message}")


class PreflightError(KdepsError):
    """A preflightCheck validation failed; answered with the configured code and message."""

    def __init__(self, resource: str, message: str, status: int = 400) -> None:
        self.resource, self.message, self.status = resource, message, status
        super().__init__(message)


class InputValidationError(KdepsError):
    """Request input broke a resource's validation rules: answered with 422 and one entry per problem
    (`{"field", "type", "message", "value"}`); build the body with `kdeps.engine.validation.error_body`."""

    status = 422

    def __init__(self, resource: str, errors: list[dict[str, Any]],
                 message: str = "Input validation failed") -> None:
        self.resource, self.errors, self.message = resource, errors, message
        problems = "; ".join(str(e.get("message")) for e in errors)
        where = f"resource '{resource}': " if resource else ""
        super().__init__(f"{where}{message}: {problems}")
