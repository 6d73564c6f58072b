"""Input validation of a resource (`run.validation` / `validations:`): required fields, per-field
rules and custom expression rules, checked as KDeps' engine checks them.

    check_input(rules: InputValidation, data: Mapping[str, Any], evaluate: Callable[[str], Any],
                *, resource: str = "") -> None

`data` is the request's input as one mapping (body fields, query parameters, headers:
`Scope.request_data()`); `evaluate` runs one expression in the resource's scope (custom rules).
Field problems are all reported together; custom rules run only when the fields are valid. A failure
raises `InputValidationError` (status 422), whose envelope is the JSON answer:

    {"success": false,
     "error": {"code": "VALIDATION_ERROR", "message": "Input validation failed", "resourceId": "...",
               "details": {"errors": [{"field": "email", "type": "required",
                                       "message": "field 'email' is required"}]}},
     "meta": {"requestID": "...", "timestamp": "...", "path": "...", "method": "..."}}
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from kdeps.errors import InputValidationError, KdepsError
from kdeps.expr.builtins.operators import op_matches
from kdeps.expr.values import go_float, type_name
from kdeps.spec.resources import FieldRule, InputValidation

Problem = dict[str, Any]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2}))?")


def check_input(rules: InputValidation, data: Mapping[str, Any], evaluate: Callable[[str], Any],
                *, resource: str = "") -> None:
    """Raise InputValidationError when `data` breaks `rules` (see the module docstring)."""
    problems = field_problems(rules, data)
    if problems:
        raise InputValidationError(resource, problems, "Input validation failed")
    problems = custom_problems(rules, evaluate)
    if problems:
        raise InputValidationError(resource, problems, "Custom validation failed")


def field_rules(rules: InputValidation) -> list[tuple[str, FieldRule]]:
    """(field name, rule) pairs: `properties` wins over `fields`, either over the `rules` list."""
    by_name = rules.properties or rules.fields
    if by_name:
        return list(by_name.items())
    return [(rule.field, rule) for rule in rules.rules if rule.field]


def field_problems(rules: InputValidation, data: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for name in rules.required:
        if _empty(data.get(name)):
            problems.append({"field": name, "type": "required", "message": f"field '{name}' is required"})
    for name, rule in field_rules(rules):
        if name not in data or data[name] is None:
            continue  # absent: only `required` complains
        problem = _check_field(rule, data[name])
        if problem is not None:
            kind, message = problem
            problems.append({"field": name, "type": kind, "message": rule.message or message,
                             "value": data[name]})
    return problems


def custom_problems(rules: InputValidation, evaluate: Callable[[str], Any]) -> list[Problem]:
    problems: list[Problem] = []
    for rule in rules.custom_rules:
        try:
            result = evaluate(rule.expr)
        except KdepsError as exc:
            problems.append({"type": "expression", "message": f"expression evaluation failed: {exc}"})
            continue
        if result is not True and not (result and result is not None):
            problems.append({"type": "custom", "message": rule.message or f"expression failed: {rule.expr}"})
    return problems


# -- one field -------------------------------------------------------------------------------------
def _check_field(rule: FieldRule, value: Any) -> tuple[str, str] | None:
    """(error type, message) of the first rule `value` breaks, or None."""
    kind = rule.type
    wrong = _type_problem(kind, value)
    if wrong is not None:
        return "type", wrong
    group = _GROUPS.get(kind) if kind else _shape(value)
    if group == "string":
        return _string_problem(rule, value)
    if group == "number":
        return _number_problem(rule, value)
    if group == "array":
        return _array_problem(rule, value)
    return _enum_problem(rule, value)


def _shape(value: Any) -> str | None:
    """The constraint group of an untyped rule, from the value itself."""
    if isinstance(value, str):
        return "string"
    if _is_number(value):
        return "number"
    if isinstance(value, list):
        return "array"
    return None


def _type_problem(kind: str | None, value: Any) -> str | None:
    if kind is None:
        return None
    got = type_name(value)
    if kind in ("string", "email", "url", "uuid", "date") and not isinstance(value, str):
        return f"expected {'string' if kind == 'string' else f'string for {kind}'}, got {got}"
    if kind == "integer" and not (_is_number(value) and float(value).is_integer()):
        return f"expected integer, got {got}"
    if kind == "number" and not _is_number(value):
        return f"expected number, got {got}"
    if kind == "boolean" and not isinstance(value, bool):
        return f"expected boolean, got {got}"
    if kind == "array" and not isinstance(value, list):
        return f"expected array, got {got}"
    if kind == "object" and not isinstance(value, Mapping):
        return f"expected object, got {got}"
    check = _FORMATS.get(kind)
    return check(value) if check else None


def _string_problem(rule: FieldRule, value: str) -> tuple[str, str] | None:
    if rule.min_length is not None and len(value) < rule.min_length:
        return "minLength", f"must be at least {rule.min_length} characters"
    if rule.max_length is not None and len(value) > rule.max_length:
        return "maxLength", f"must be at most {rule.max_length} characters"
    if rule.pattern is not None:
        try:
            matched = op_matches(value, rule.pattern)
        except KdepsError:
            matched = False  # an invalid pattern matches nothing, as in KDeps
        if not matched:
            return "pattern", "does not match required pattern"
    return _enum_problem(rule, value)


def _number_problem(rule: FieldRule, value: float) -> tuple[str, str] | None:
    low = rule.minimum if rule.minimum is not None else rule.min
    high = rule.maximum if rule.maximum is not None else rule.max
    if low is not None and value < low:
        return "min", f"must be at least {_num(low)}"
    if high is not None and value > high:
        return "max", f"must be at most {_num(high)}"
    return _enum_problem(rule, value)


def _array_problem(rule: FieldRule, value: list[Any]) -> tuple[str, str] | None:
    if rule.min_items is not None and len(value) < rule.min_items:
        return "minItems", f"must have at least {rule.min_items} items"
    if rule.max_items is not None and len(value) > rule.max_items:
        return "maxItems", f"must have at most {rule.max_items} items"
    return None


def _enum_problem(rule: FieldRule, value: Any) -> tuple[str, str] | None:
    if not rule.enum:
        return None
    if isinstance(value, str):
        allowed = any(value == _text(choice) for choice in rule.enum)
    else:
        allowed = any(value == choice and isinstance(value, bool) == isinstance(choice, bool)
                      for choice in rule.enum)
    if allowed:
        return None
    return "enum", "must be one of: [" + " ".join(_text(c) for c in rule.enum) + "]"


# -- formats ---------------------------------------------------------------------------------------
def _email(value: str) -> str | None:
    _, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or " " in address:
        return "invalid email format"
    return None


def _url(value: str) -> str | None:
    if not value.startswith(("http://", "https://")):
        return "URL must start with http:// or https://"
    try:
        host = urlsplit(value).netloc
    except ValueError:
        return "invalid URL format"
    return None if host else "URL must have a valid host"


def _uuid(value: str) -> str | None:
    try:
        uuid.UUID(value)
    except ValueError:
        return "invalid UUID format"
    return None


def _date(value: str) -> str | None:
    if _DATE.fullmatch(value):
        try:
            datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
            return None
        except ValueError:
            pass
    return "invalid date format (expected RFC3339 or YYYY-MM-DD)"


_FORMATS: dict[str, Callable[[str], str | None]] = {
    "email": _email, "url": _url, "uuid": _uuid, "date": _date}
# Which constraints a declared type takes (KDeps: uuid, date, boolean and object take none).
_GROUPS = {"string": "string", "email": "string", "url": "string", "integer": "number", "number": "number",
           "array": "array"}


# -- helpers ---------------------------------------------------------------------------------------
def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _num(value: float) -> str:
    return go_float(float(value))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)
