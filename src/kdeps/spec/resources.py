"""Resource files in both layouts: the seed-era `metadata:`/`run:` one and the current flat one.

Both read the same action blocks (`kdeps.spec.actions`) and checks; `spec/plan.py` turns either
into one `ResourcePlan`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Discriminator, Field, Tag, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from kdeps.spec.actions import ACTIONS, ActionBlocks
from kdeps.spec.fields import (
    ApiVersion,
    Duration,
    Method,
    SpecModel,
    StrList,
    default_of,
    scalar_to_str,
)
from kdeps.spec.units import next_fire_time


def _items(value: Any) -> Any:
    if value is None or isinstance(value, list | str):
        return value
    raise PydanticCustomError("items_type", "items must be a list or an expression string")


Items = Annotated[
    list[Any] | str | None,
    BeforeValidator(_items),
    WithJsonSchema({"type": ["array", "string"]}),
    Field(description="Run once per item: a list, or an expression giving a list."),
]

ActionId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$",
        description="Unique id; other resources use it in requires and get('id').",
    ),
]


# ---------------------------------------------------------------- checks and error handling


class PreflightErrorSpec(SpecModel):
    """What to answer when a preflight validation fails."""

    code: int = Field(400, ge=100, le=599)
    message: str = "Validation failed"


class PreflightCheck(SpecModel):
    """Expressions that must all be true before the action runs."""

    validations: StrList = Field(default_factory=list)
    error: PreflightErrorSpec = Field(default_factory=default_of(PreflightErrorSpec))


class FieldRule(SpecModel):
    """Rules for one input field."""

    field: str | None = Field(None, description="Field name (only in `rules` lists).")
    type: (
        Literal["string", "number", "integer", "boolean", "object", "array", "email", "url", "uuid", "date"]
        | None
    ) = None
    format: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    min: float | None = None
    max: float | None = None
    enum: list[Any] | None = None
    pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    message: str | None = None


class CustomRule(SpecModel):
    """An expression that must hold, with the message shown when it does not."""

    expr: str
    message: str | None = Field(None, description="Shown when the rule fails; default: the expression.")


class InputValidation(SpecModel):
    """Checks of the request's input fields (answered with 422 when they fail)."""

    required: StrList = Field(default_factory=list)
    properties: dict[str, FieldRule] = Field(default_factory=dict)
    fields: dict[str, FieldRule] = Field(default_factory=dict)
    rules: list[FieldRule] = Field(default_factory=list)
    custom_rules: list[CustomRule] = Field(default_factory=list)


class OnError(SpecModel):
    """What to do when the resource fails."""

    action: Literal["continue", "fail", "retry"] = "fail"
    max_retries: int = Field(3, ge=0)
    retry_delay: Duration = 1.0
    fallback: Any = Field(
        None,
        description="Output used with action: continue (check model_fields_set "
        "to tell `fallback: null` from no fallback).",
    )
    expr: StrList = Field(default_factory=list, description="Expressions run on error; `error` is available.")
    when: StrList = Field(default_factory=list, description="Handle the error only if one of these holds.")


# ---------------------------------------------------------------- the seed-era layout (metadata: + run:)
# pydantic lists a model's fields base by base, the last base first, then the class's own. The private
# bases below exist so that each model keeps its YAML keys in the order the docs and the loader's
# "it belongs under ..." hints (first of equally short paths) follow.


class SeedRunKeys(SpecModel):
    """The seed-era `run:` keys for when a resource runs and what it reads and checks; the current
    layout reads them at the top level too."""

    restrict_to_http_methods: list[Method] = Field(
        default_factory=list, description="Run only for these HTTP methods (= validations.methods).")
    restrict_to_routes: StrList = Field(
        default_factory=list, description="Run only for these routes (= validations.routes).")
    allowed_headers: StrList = Field(
        default_factory=list, description="Headers the resource may read (= validations.headers).")
    allowed_params: StrList = Field(
        default_factory=list, description="Parameters the resource may read (= validations.params).")
    skip_condition: StrList = Field(
        default_factory=list, description="Skip the resource if any is true (= validations.skip).")
    preflight_check: PreflightCheck | None = Field(None, description="= validations.check and error")
    validation: InputValidation | None = Field(None, description="= validations.required/rules")
    expr_before: StrList = Field(default_factory=list, description="Expressions run before the action.")
    expr: StrList = Field(default_factory=list, description="Expressions run after the action.")
    expr_after: StrList = Field(default_factory=list, description="Expressions run after `expr`.")


class _RunKeys(SeedRunKeys):
    on_error: OnError | None = None
    timeout_duration: Duration | None = None


class Run(ActionBlocks, _RunKeys):
    """How and when the resource runs, and its one action."""


class ResourceMetadata(SpecModel):
    """Identity and dependencies of a resource."""

    action_id: ActionId
    name: str = ""
    description: str = ""
    category: str = ""
    requires: StrList = Field(default_factory=list, description="actionIds that must run first.")


class Resource(SpecModel):
    """A resource file document: one step of the workflow."""

    api_version: ApiVersion = "kdeps.io/v1"
    kind: Literal["Resource"] = "Resource"
    metadata: ResourceMetadata
    items: Items = None
    run: Run = Field(default_factory=default_of(Run))


# ---------------------------------------------------------------- steps and the current (flat) layout


class InlineAction(ActionBlocks):
    """One inline action of a `before:`/`after:` list: exactly one action block."""

    @model_validator(mode="after")
    def _check(self) -> InlineAction:
        present = [to_camel(name) for name in ACTIONS if getattr(self, name) is not None]
        if len(present) != 1:
            found = " and ".join(present) if present else "none"
            raise ValueError(f"an inline step has exactly one action block ({found} given)")
        return self


Step = Annotated[
    Annotated[
        Annotated[str, Tag("expression")] | Annotated[InlineAction, Tag("action")],
        Discriminator(lambda v: "action" if isinstance(v, dict | BaseModel) else "expression"),
    ],
    BeforeValidator(scalar_to_str),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"$ref": "#/definitions/InlineAction"}]}),
]
"""A `before:`/`after:` entry: an expression, or an inline action."""


class Validations(SpecModel):
    """When the resource runs and what it accepts (the current layout's `validations:`)."""

    methods: list[Method] = Field(default_factory=list, description="Run only for these HTTP methods.")
    routes: StrList = Field(default_factory=list, description="Run only for these routes.")
    headers: StrList = Field(default_factory=list, description="Headers the resource may read.")
    params: StrList = Field(default_factory=list, description="Parameters the resource may read.")
    skip: StrList = Field(default_factory=list, description="Skip the resource if any is true.")
    check: StrList = Field(default_factory=list, description="All must be true, else answer `error`.")
    error: PreflightErrorSpec | None = None
    required: StrList = Field(default_factory=list, description="Input fields that must be present.")
    rules: list[FieldRule] = Field(default_factory=list, description="Rules for input fields.")
    properties: dict[str, FieldRule] = Field(default_factory=dict)
    custom_rules: list[CustomRule] = Field(default_factory=list)
    expr: StrList = Field(default_factory=list, description="Custom rules: expressions that must hold.")


class Loop(SpecModel):
    """Repeat the resource while `while` holds (or `maxIterations` times), `every` apart."""

    while_: str | None = Field(None, alias="while", description="Checked before each iteration.")
    max_iterations: int = Field(1000, ge=1, description="Safety cap on iterations (default 1000).")
    every: Duration | None = Field(None, description="Pause between iterations, e.g. 5s.")
    at: StrList = Field(
        default_factory=list,
        description="Run iteration N at the Nth of these dates/times (RFC 3339, a date, or HH:MM).",
    )

    @model_validator(mode="after")
    def _check(self) -> Loop:
        if self.at and self.every is not None:
            raise ValueError("loop.every and loop.at are mutually exclusive: set only one")
        for entry in self.at:
            next_fire_time(entry)  # an invalid entry is an error before any iteration
        return self


class _FlatResourceKeys(SpecModel):
    api_version: ApiVersion = "kdeps.io/v1"
    kind: Literal["Resource"] = "Resource"
    action_id: ActionId
    name: str = ""
    description: str = ""
    category: str = ""
    requires: StrList = Field(default_factory=list, description="actionIds that must run first.")
    items: Items = None
    validations: Validations | None = None
    loop: Loop | None = None
    before: list[Step] = Field(default_factory=list, description="Expressions or actions run first.")
    after: list[Step] = Field(default_factory=list, description="Expressions or actions run after.")
    on_error: OnError | None = None
    timeout: Duration | None = Field(None, description="Time limit of the resource's action.")


# The seed-era `run:` keys are read at the top level too (upstream's own tests write them there), as
# the current layout's equivalents.
class FlatResource(SeedRunKeys, ActionBlocks, _FlatResourceKeys):
    """A resource in the current layout: identity, checks, steps and actions at the top level."""
