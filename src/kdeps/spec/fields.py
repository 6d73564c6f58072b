"""The field types and the base model every spec model is built from.

Attributes are snake_case; the YAML keys are their camelCase aliases. Unknown keys are errors.
Templated values (`"{{ get('q') }}"`) and bare expressions are kept as plain strings: rendering
happens when a request runs, not here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from kdeps.spec.backends import BACKENDS
from kdeps.spec.units import parse_byte_size, parse_duration

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")


def _duration(value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from None


def _byte_size(value: Any) -> int:
    try:
        return parse_byte_size(value)
    except ValueError as exc:
        raise PydanticCustomError("byte_size", str(exc)) from None


def scalar_to_str(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _one_or_many(value: Any) -> Any:
    """Let a single string stand for a one-element list (`requires: other`)."""
    return [value] if isinstance(value, str) else value


def _method(value: Any) -> Any:
    if not isinstance(value, str):  # a number must not pass as its text
        raise PydanticCustomError(
            "http_method",
            "invalid HTTP method {value}; expected one of: {allowed}",
            {"value": value, "allowed": ", ".join(HTTP_METHODS)},
        )
    upper = value.strip().upper()
    if upper not in HTTP_METHODS:
        raise PydanticCustomError(
            "http_method",
            "invalid HTTP method '{value}'; expected one of: {allowed}",
            {"value": value, "allowed": ", ".join(HTTP_METHODS)},
        )
    return upper


def _backend(value: Any) -> Any:
    if isinstance(value, str):
        name = value.strip().lower()
        if name not in BACKENDS:
            from difflib import get_close_matches

            close = get_close_matches(name, BACKENDS, n=1)
            raise PydanticCustomError(
                "unknown_backend",
                "unknown backend '{value}'; valid backends: {allowed}",
                {"value": value, "allowed": ", ".join(BACKENDS), "suggestion": close[0] if close else None},
            )
        return name
    return value


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": r"^\s*((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d))+\s*$|^\s*\d+(\.\d*)?\s*$",
                },
                {"type": "number", "minimum": 0},
            ],
            "description": "Duration: 30s, 1m30s, 500ms, 24h, or a number of seconds.",
        }
    ),
]
"""Seconds as a float; YAML may say `60s`, `1m30s`, `500ms`, `24h` or a bare number of seconds."""

ByteSize = Annotated[
    int,
    BeforeValidator(_byte_size),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}],
            "description": "Bytes, or a size such as 512KB, 10MB, 1GB.",
        }
    ),
]

ScalarStr = Annotated[
    str,
    BeforeValidator(scalar_to_str),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
"""A string; YAML numbers and booleans are accepted and kept as their text (`true`, `42`)."""

StrList = Annotated[
    list[ScalarStr],
    BeforeValidator(_one_or_many),
    WithJsonSchema(
        {"anyOf": [{"type": "array", "items": {"type": ["string", "number", "boolean"]}}, {"type": "string"}]}
    ),
]
"""A list of strings; a single string is read as a one-element list."""

Method = Annotated[
    str,
    BeforeValidator(_method),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "enum": list(HTTP_METHODS)},
                {"type": "string", "pattern": "^(" + "|".join(m.lower() for m in HTTP_METHODS) + ")$"},
            ],
            "description": "HTTP method (case-insensitive).",
        }
    ),
]


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise PydanticCustomError("port", "port must be between 1 and 65535, got {value}", {"value": value})
    return value


Port = Annotated[
    int, AfterValidator(_port), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 65535})
]
"""A TCP port, 1-65535."""

Text = Annotated[str, Strict()]
"""A string that must be written as one: a YAML number or boolean here is a mistake, not text."""

Backend = Annotated[
    str, BeforeValidator(_backend), WithJsonSchema({"type": "string", "enum": list(BACKENDS)})
]

ApiVersion = Annotated[Literal["kdeps.io/v1"], Field(description="Always kdeps.io/v1.")]
"""The `apiVersion` of every document."""


_ALIAS_MAPS: dict[type, dict[str, str]] = {}


def timeout_field() -> Any:
    """A `timeoutDuration` field that the current layout spells `timeout`."""
    return Field(
        None,
        validation_alias=AliasChoices("timeoutDuration", "timeout"),
        description="Time limit, e.g. 30s (`timeout` in the current layout).",
    )


def default_of(cls: type[BaseModel]) -> Any:
    """Default factory that skips validation (defaults are valid), so no validator is built for it."""
    return cls.model_construct


class SpecModel(BaseModel):
    """Base of every spec model: camelCase keys, unknown keys rejected, `key: null` means "not set"."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        coerce_numbers_to_str=True,
        defer_build=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        # An empty YAML value (`requires:`) means "use the default", except where null is meaningful
        # (fields whose default is None, such as onError.fallback, keep the explicit null).
        if isinstance(data, dict) and None in data.values():
            fields = cls.model_fields
            by_alias = cls._alias_map()
            out = {}
            for key, value in data.items():
                name = by_alias.get(str(key), str(key))
                field = fields.get(name)
                if (
                    value is None
                    and field is not None
                    and not field.is_required()
                    and (field.default is not None or field.default_factory is not None)
                ):
                    continue
                out[key] = value
            return out
        return data

    @classmethod
    def _alias_map(cls) -> dict[str, str]:
        cached = _ALIAS_MAPS.get(cls)
        if cached is None:
            cached = {}
            for n, f in cls.model_fields.items():
                cached[f.alias or n] = n
                if isinstance(f.validation_alias, AliasChoices):
                    cached.update({str(c): n for c in f.validation_alias.choices})
            _ALIAS_MAPS[cls] = cached
        return cached

    @classmethod
    def yaml_keys(cls) -> list[str]:
        """The YAML keys this model accepts (the camelCase aliases)."""
        return list(cls._alias_map())
