"""The typed, immutable plan of a resource, resolved once from either YAML layout.

The loader validates each document against the model of its layout (`Resource` for the seed-era
`metadata:`/`run:` layout, `FlatResource` for the current one) and turns it into a `ResourcePlan`.
Everything after the loader (engine, server, deploy) reads plans only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kdeps.expr import Program, compile_expression
from kdeps.expr.template import unbrace
from kdeps.spec.actions import ApiResponse, Chat, Exec, HttpClient, Python
from kdeps.spec.resources import (
    CustomRule,
    FlatResource,
    InlineAction,
    InputValidation,
    Loop,
    OnError,
    Resource,
    Validations,
)

Layout = Literal["seed-era", "current"]
ActionKind = Literal["chat", "http_client", "python", "exec", "api_response"]
ActionConfig = Chat | HttpClient | Python | Exec | ApiResponse
DEFAULT_TIMEOUT = 60.0
_PRIMARY: tuple[ActionKind, ...] = ("chat", "http_client", "python", "exec")


@dataclass(frozen=True, slots=True)
class Action:
    """An action block and the module that runs it."""

    kind: ActionKind
    config: ActionConfig


@dataclass(frozen=True, slots=True)
class Step:
    """One `before:`/`after:` entry: a compiled expression or an inline action."""

    source: str | None = None
    program: Program | None = None
    action: Action | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """Conditions that must all hold, and the error answered when one does not."""

    conditions: tuple[tuple[str, Program], ...]
    code: int
    message: str | None


@dataclass(frozen=True, slots=True)
class LoopPlan:
    """`loop:`: repeat while `condition` holds (None: until `max_iterations`), `every` seconds apart."""

    condition: Program | None
    source: str | None
    max_iterations: int
    every: float
    at: tuple[str, ...] = ()  # iteration N waits for the Nth entry; the loop ends when they run out


@dataclass(frozen=True, slots=True)
class ResourcePlan:
    """One resource, ready to run: checks, steps and actions in execution order."""

    action_id: str
    name: str
    layout: Layout
    file: Path
    line: int
    requires: tuple[str, ...]
    items: tuple[Any, ...] | str | None
    methods: frozenset[str]
    routes: tuple[str, ...]
    allowed_headers: tuple[str, ...]
    allowed_params: tuple[str, ...]
    skip: tuple[tuple[str, Program], ...]
    check: Check | None
    validation: InputValidation | None
    before: tuple[Step, ...]
    primary: Action | None
    after: tuple[Step, ...]
    response: ApiResponse | None
    on_error: OnError | None
    timeout: float
    loop: LoopPlan | None = None

    def actions(self) -> Iterator[Action]:
        """Every action of the resource: inline steps, primary and response."""
        for step in self.before:
            if step.action is not None:
                yield step.action
        if self.primary is not None:
            yield self.primary
        for step in self.after:
            if step.action is not None:
                yield step.action
        if self.response is not None:
            yield Action("api_response", self.response)

    def chats(self) -> Iterator[Chat]:
        """Every `chat` block of the resource (primary or inline)."""
        for action in self.actions():
            if isinstance(action.config, Chat):
                yield action.config


def _compiled(sources: list[str]) -> tuple[tuple[str, Program], ...]:
    return tuple((s, compile_expression(unbrace(s))) for s in sources)


def _expr_step(source: str) -> Step:
    return Step(source=source, program=compile_expression(unbrace(source)))


def _action_of(block: Any, kinds: tuple[ActionKind, ...] = _PRIMARY) -> Action | None:
    for kind in kinds:
        config = getattr(block, kind)
        if config is not None:
            return Action(kind, config)
    return None


def _step(entry: str | InlineAction) -> Step:
    if isinstance(entry, str):
        return _expr_step(entry)
    action = _action_of(entry, (*_PRIMARY, "api_response"))
    assert action is not None  # InlineAction validates that one block is set
    return Step(action=action)


def _timeout(primary: Action | None, resource_timeout: float | None) -> float:
    own = getattr(primary.config, "timeout_duration", None) if primary is not None else None
    return float(own or resource_timeout or DEFAULT_TIMEOUT)


def _validation(rules: InputValidation | None) -> InputValidation | None:
    if rules is None:
        return None
    empty = not (rules.required or rules.properties or rules.fields or rules.rules or rules.custom_rules)
    return None if empty else rules


def from_seed(resource: Resource, file: Path, line: int) -> ResourcePlan:
    """Plan of a seed-era document (`metadata:` + `run:`)."""
    run = resource.run
    primary = _action_of(run)
    preflight = run.preflight_check
    check = None
    if preflight is not None and preflight.validations:
        error = preflight.error
        explicit = "message" in error.model_fields_set
        check = Check(_compiled(list(preflight.validations)), error.code, error.message if explicit else None)
    return ResourcePlan(
        action_id=resource.metadata.action_id,
        name=resource.metadata.name,
        layout="seed-era",
        file=file,
        line=line,
        requires=tuple(resource.metadata.requires),
        items=tuple(resource.items) if isinstance(resource.items, list) else resource.items,
        methods=frozenset(m.upper() for m in run.restrict_to_http_methods),
        routes=tuple(run.restrict_to_routes),
        allowed_headers=tuple(run.allowed_headers),
        allowed_params=tuple(run.allowed_params),
        skip=_compiled(list(run.skip_condition)),
        check=check,
        validation=_validation(run.validation),
        before=tuple(_expr_step(s) for s in run.expr_before),
        primary=primary,
        after=tuple(_expr_step(s) for s in [*run.expr, *run.expr_after]),
        response=run.api_response,
        on_error=run.on_error,
        timeout=_timeout(primary, run.timeout_duration),
    )


def from_flat(resource: FlatResource, file: Path, line: int) -> ResourcePlan:
    """Plan of a current-layout document (top-level `actionId`, `validations`, `before`/`after`;
    the seed-era `run:` keys are read at the top level too)."""
    r = resource
    v = r.validations or Validations.model_construct()
    primary = _action_of(r)
    check = None
    conditions = [*v.check, *(r.preflight_check.validations if r.preflight_check else [])]
    if conditions:
        error = v.error or (r.preflight_check.error if r.preflight_check else None)
        code = error.code if error is not None else 400
        explicit = error is not None and "message" in error.model_fields_set
        check = Check(_compiled(conditions), code, error.message if error is not None and explicit else None)
    # `validations.expr` are custom rules: each must hold, else a 422 names it.
    legacy = r.validation or InputValidation.model_construct(
        required=[], properties={}, fields={}, rules=[], custom_rules=[])
    custom = [*legacy.custom_rules, *(v.custom_rules or []),
              *(CustomRule.model_construct(expr=e, message=None) for e in v.expr or [])]
    validation = _validation(InputValidation.model_construct(
        required=[*legacy.required, *(v.required or [])],
        properties={**legacy.properties, **(v.properties or {})}, fields=dict(legacy.fields),
        rules=[*legacy.rules, *(v.rules or [])], custom_rules=custom))
    return ResourcePlan(
        action_id=r.action_id,
        name=r.name,
        layout="current",
        file=file,
        line=line,
        requires=tuple(r.requires),
        items=tuple(r.items) if isinstance(r.items, list) else r.items,
        methods=frozenset(m.upper() for m in [*(v.methods or []), *r.restrict_to_http_methods]),
        routes=(*(v.routes or []), *r.restrict_to_routes),
        allowed_headers=(*(v.headers or []), *r.allowed_headers),
        allowed_params=(*(v.params or []), *r.allowed_params),
        skip=_compiled([*(v.skip or []), *r.skip_condition]),
        check=check,
        validation=validation,
        before=tuple(_expr_step(s) for s in r.expr_before) + tuple(_step(e) for e in r.before),
        primary=primary,
        after=tuple(_step(e) for e in r.after) + tuple(_expr_step(s) for s in [*r.expr, *r.expr_after]),
        response=r.api_response,
        on_error=r.on_error,
        timeout=_timeout(primary, r.timeout),
        loop=_loop(r.loop),
    )


def _loop(loop: Loop | None) -> LoopPlan | None:
    if loop is None:
        return None
    condition = compile_expression(unbrace(loop.while_)) if loop.while_ else None
    return LoopPlan(condition, loop.while_, loop.max_iterations, float(loop.every or 0), tuple(loop.at))
