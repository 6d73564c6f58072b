"""Typed errors shown to users: the one tree every error a user can meet belongs to. None of them
carries a traceback to the user or an API key.

Each error knows the HTTP status kdeps answers with (`status`), KDeps' error code (`code`) and the
fields of its JSON body (`fields()`); `envelope()` is that body, built by `kdeps.envelope`."""

from __future__ import annotations

from typing import Any

from kdeps import envelope

# KDeps' error codes (Go: pkg/domain AppErrorCode) by the status they answer with.
_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
          413: "REQUEST_TOO_LARGE", 422: "VALIDATION_ERROR", 429: "RATE_LIMITED", 503: "SERVICE_UNAVAILABLE",
          504: "TIMEOUT"}


def code_for(status: int) -> str:
    """KDeps' error code for an HTTP status (INTERNAL_ERROR for the rest of the 5xx)."""
    return _CODES.get(status) or ("BAD_REQUEST" if status < 500 else "INTERNAL_ERROR")


class KdepsError(Exception):
    """Base of every error kdeps reports to a user. `message` is what a client may read; `str()` may
    add where it happened."""

    status = 500  # the HTTP status a client gets when the error ends a request

    def __init__(self, message: str = "") -> None:
        self.message = message
        super().__init__(message)

    @property
    def code(self) -> str:
        return code_for(self.status)

    def fields(self) -> dict[str, Any]:
        """The `error` object of the JSON body, beyond `code` and `message`."""
        return {}

    def envelope(self, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON body a client gets for this error."""
        return envelope.failure(self.message or str(self), self.code, meta, **self.fields())


class HTTPError(KdepsError):
    """A request the server refuses before or after running the workflow (limits, routing, sessions),
    answered as JSON with `status` and `headers`; never shown with a traceback."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 **fields: Any) -> None:
        super().__init__(message)
        self.status, self.headers, self._fields = status, headers or {}, fields

    def fields(self) -> dict[str, Any]:
        return self._fields


class SpecError(KdepsError):
    """A mistake in workflow.yaml or a resource file, located at file:line:col."""

    def __init__(self, message: str, file: str = "", line: int = 0, col: int = 0,
                 suggestion: str | None = None) -> None:
        self.file, self.line, self.col, self.suggestion = file, line, col, suggestion
        super().__init__(message)

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

    code = "EXPRESSION_ERROR"

    def __init__(self, message: str, source: str = "", pos: int | None = None) -> None:
        self.source, self.pos = source, pos
        super().__init__(message)

    def __str__(self) -> str:
        if not self.source:
            return self.message
        text = f"{self.message}\n  {self.source}"
        if self.pos is not None:
            text += "\n  " + " " * self.pos + "^"
        return text


class ResourceError(KdepsError):
    """A resource failed while running a request, answered with `status`."""

    def __init__(self, resource: str, message: str, status: int = 502) -> None:
        self.resource, self.status = resource, status
        super().__init__(message)

    @property
    def code(self) -> str:
        return "RESOURCE_FAILED" if self.status in (500, 502) else code_for(self.status)

    def __str__(self) -> str:
        return f"resource '{self.resource}': {self.message}"

    def fields(self) -> dict[str, Any]:
        return {"resource": self.resource, "resourceId": self.resource}


class PreflightError(ResourceError):
    """A preflightCheck validation failed; answered with the configured status and message."""

    code = "PREFLIGHT_FAILED"

    def __init__(self, resource: str, message: str, status: int = 400) -> None:
        super().__init__(resource, message, status)

    def __str__(self) -> str:
        return self.message


class InputValidationError(ResourceError):
    """Request input broke a resource's validation rules: answered with 422 and one entry per problem
    (`{"field", "type", "message", "value"}`) under `details.errors`."""

    code = "VALIDATION_ERROR"

    def __init__(self, resource: str, errors: list[dict[str, Any]],
                 message: str = "Input validation failed") -> None:
        self.errors = errors
        super().__init__(resource, message, 422)

    def __str__(self) -> str:
        problems = "; ".join(str(e.get("message")) for e in self.errors)
        where = f"resource '{self.resource}': " if self.resource else ""
        return f"{where}{self.message}: {problems}"

    def fields(self) -> dict[str, Any]:
        named = super().fields() if self.resource else {}
        return {**named, "details": {"errors": self.errors}}
