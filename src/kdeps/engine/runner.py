"""Runs one request through a workflow: the target's dependencies in order, independent branches
concurrently, each resource through restrictions → skip → check → validation → items → before →
primary action → after → apiResponse (the Go engine's order)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from kdeps import envelope, observability
from kdeps.actions import get_action
from kdeps.engine.request import RequestData, ResponseData
from kdeps.engine.scope import (
    KNOWN_NAMES,
    AgentInfo,
    LoopState,
    RequestState,
    ResourceRecord,
    Scope,
    agent_env,
)
from kdeps.engine.validation import check_input
from kdeps.errors import ExprError, InputValidationError, KdepsError, PreflightError, ResourceError
from kdeps.expr import Env, Program, evaluate, render
from kdeps.expr.template import is_bare_expression, unbrace
from kdeps.spec.graph import reachable_order
from kdeps.spec.plan import Action, LoopPlan, ResourcePlan, Step
from kdeps.spec.units import next_fire_time

if TYPE_CHECKING:
    from kdeps.spec.loader import Project

log = logging.getLogger("kdeps.engine")

Emit = Callable[[dict[str, Any]], Awaitable[None]]
DEFAULT_ACTION_TIMEOUT = 60.0
_TIMEOUT_GRACE = 2.0  # actions enforce their own timeouts; the engine's is a backstop
# actions that need no backstop: chat holds the whole call to ctx.deadline(); apiResponse never waits
_OWN_DEADLINE = frozenset({"chat", "api_response"})


_EXPRESSIONS_ONLY = {"status": "expressions_executed"}


class Skipped(Exception):
    """Internal: the resource does not apply to this request."""


class Engine:
    """A loaded project, ready to run requests. Cheap to call concurrently."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.resources: dict[str, ResourcePlan] = project.resources
        self.requires = {aid: list(r.requires) for aid, r in self.resources.items()}
        self.target = project.workflow.metadata.target_action_id
        self.order = reachable_order(self.requires, self.target)
        self._chain = _is_chain(self.order, self.requires)
        self.env = agent_env(project.workflow.settings.agent_settings.env)
        meta = project.workflow.metadata
        self.agent = AgentInfo(meta.name or "", str(meta.version or ""), meta.description or "",
                               meta.target_action_id)

    async def handle(self, request: RequestData, *, emit: Emit | None = None) -> ResponseData:
        """Run the workflow for one request and shape the target's answer as the HTTP response. Every
        failure is answered here too (its envelope), so callers never see an exception but cancellation."""
        state = RequestState(request, self.env, agent=self.agent)
        try:
            await self.run(state, emit=emit)
            response = self._response(state)
        except Exception as exc:
            response = failure(exc, request)
        response.session_changed = state.session_changed
        response.resources = list(state.records)
        response.records = state.records
        return response

    async def run(self, state: RequestState, *, emit: Emit | None = None,
                  order: list[str] | None = None) -> None:
        order = order or self.order
        if self._chain if order is self.order else _is_chain(order, self.requires):
            for aid in order:  # a chain: nothing can run concurrently, so no tasks are needed
                await self.run_resource(aid, state, emit)
            return
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            async with asyncio.TaskGroup() as group:
                for aid in order:
                    deps = [tasks[d] for d in self.requires[aid] if d in tasks]
                    tasks[aid] = group.create_task(self._after(deps, aid, state, emit))
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None

    async def _after(self, deps: list[asyncio.Task[None]], aid: str, state: RequestState,
                     emit: Emit | None) -> None:
        for dep in deps:
            await dep
        await self.run_resource(aid, state, emit)

    def _response(self, state: RequestState) -> ResponseData:
        record = state.records.get(self.target) or ResourceRecord()
        api = record.meta.get("api_response")
        if api is None:
            body: Any = envelope.success(record.output)
            status, headers = 200, {}
        else:
            body, status, headers = record.output, api["status"], api["headers"]
        if isinstance(body, dict) and "meta" not in body:
            llm = _llm_meta(state)
            warnings = [w for r in state.records.values() for w in r.meta.get("warnings") or ()]
            if warnings:
                llm["warnings"] = warnings
            if llm:
                body = {**body, "meta": llm}
        return ResponseData(status, body, headers)

    # -- one resource ----------------------------------------------------------------------------
    async def run_resource(self, aid: str, state: RequestState, emit: Emit | None,
                           arguments: dict[str, Any] | None = None) -> Any:
        """Restrictions → skip → check → input validation → items → (before → primary → after →
        apiResponse) with the onError policy, as the Go engine orders them."""
        with observability.resource(aid, self.resources[aid], state):  # log line, metrics, span
            return await self._run_resource(aid, state, emit, arguments)

    async def _run_resource(self, aid: str, state: RequestState, emit: Emit | None,
                            arguments: dict[str, Any] | None) -> Any:
        plan = self.resources[aid]
        record = ResourceRecord()
        started = time.perf_counter()
        try:
            scope = Scope(state, aid, plan, items=arguments)
            _check_restrictions(plan, state.request)
            if plan.skip and any(_truthy(_run(aid, source, program, scope)) for source, program in plan.skip):
                raise Skipped
            if plan.check is not None:
                self._check(plan, scope)
            if plan.validation is not None:
                check_input(plan.validation, scope.request_data(), lambda source: _eval(scope, source),
                            resource=aid)
            items = None
            if plan.items is not None:
                try:
                    items = self._items(plan, scope)
                except ExprError as err:
                    raise ResourceError(aid, f"expression error in items: {err}", 500) from None
            if plan.loop is not None:
                record.output = await self._loop(plan, plan.loop, scope, record, emit)
            elif items is None:
                record.output = await self._guarded(plan, scope, record, emit)
            else:
                outputs = []
                for index, value in enumerate(items):
                    item_scope = Scope(state, aid, plan, items={
                        **(arguments or {}), "current": value, "index": index,
                        "count": len(items), "prev": items[index - 1] if index else None,
                        "next": items[index + 1] if index + 1 < len(items) else None, "all": items})
                    outputs.append(await self._guarded(plan, item_scope, record, emit))
                record.output = record.item_values = outputs
        except Skipped:
            log.debug("resource %s skipped", aid)
            record.meta["status"] = "skipped"
        state.records[aid] = record
        record.meta["durationMs"] = round((time.perf_counter() - started) * 1000, 2)
        record.meta.setdefault("status", "error" if "error" in record.meta else "ok")
        log.debug("resource %s done in %.1f ms", aid, record.meta["durationMs"])
        return record.output

    def _check(self, plan: ResourcePlan, scope: Scope) -> None:
        check = plan.check
        if check is None:
            return
        for source, program in check.conditions:
            if not _truthy(_run(plan.action_id, source, program, scope)):
                message = check.message or f"Preflight check failed: {source}"
                raise PreflightError(plan.action_id, str(scope_render(scope, message)), check.code)

    def _items(self, plan: ResourcePlan, scope: Scope) -> list[Any] | None:
        """The iteration values. Authored entries are evaluated once; a list result expands into one
        iteration per element. Values that come from evaluation are data: never rendered again."""
        if plan.items is None:
            return None
        if isinstance(plan.items, str):
            value = _eval(scope, plan.items)
            if value is None:
                return []
            if not isinstance(value, list):
                raise ResourceError(plan.action_id, f"items must be a list, got {type(value).__name__}", 500)
            return list(value)
        out: list[Any] = []
        for entry in plan.items:
            value = scope_render(scope, entry)
            if isinstance(value, list):
                out.extend(value)
            else:
                out.append(value)
        return out

    async def _loop(self, plan: ResourcePlan, loop: LoopPlan, scope: Scope, record: ResourceRecord,
                    emit: Emit | None) -> list[Any]:
        """Run the resource body while the condition holds, at most `max_iterations` times; the
        output is every iteration's result, in order."""
        state = scope.loop = LoopState()
        fire_at = [next_fire_time(entry) for entry in loop.at]  # as KDeps: resolved when the loop starts
        while state.index < loop.max_iterations:
            if loop.condition is not None and not _truthy(
                    _run(plan.action_id, loop.source or "", loop.condition, scope)):
                break
            if state.index and loop.every:  # between iterations, never after the last one
                await asyncio.sleep(loop.every)
            if fire_at:
                if state.index >= len(fire_at):
                    break
                await asyncio.sleep(max(0.0, fire_at[state.index] - time.time()))
            state.results.append(await self._guarded(plan, scope, record, emit))
            state.index += 1
        return list(state.results)

    async def _guarded(self, plan: ResourcePlan, scope: Scope, record: ResourceRecord,
                       emit: Emit | None) -> Any:
        """One execution with the resource's onError policy applied."""
        aid = plan.action_id
        on_error = plan.on_error
        attempts = 1 + (on_error.max_retries or 0) if on_error and on_error.action == "retry" else 1
        for attempt in range(1, attempts + 1):
            try:
                return await self._execute(plan, scope, record, emit)
            except (PreflightError, InputValidationError):
                raise
            except ResourceError as err:
                error = err
                if observability.missing_key(err):  # a server misconfiguration, not the client's
                    error = ResourceError(aid, err.message, 503)
            except KdepsError as err:
                error = _as_resource_error(aid, err)
            except TimeoutError:
                error = ResourceError(aid, f"timed out after {plan.timeout:g}s", 504)
            except Exception as err:  # an action bug: log it, answer a clean error
                log.exception("resource %s failed unexpectedly", aid)
                error = ResourceError(aid, f"internal error: {type(err).__name__}: {err}", 500)
            if on_error is None or on_error.action == "fail":
                raise error
            details = _error_object(error)
            if on_error.when and not any(
                    _truthy(_eval(scope, cond, {"error": details})) for cond in on_error.when):
                raise error
            if on_error.action == "retry" and attempt < attempts:
                log.warning("resource %s failed (%s); retry %d/%d", aid, error.message, attempt, attempts - 1)
                await asyncio.sleep(on_error.retry_delay or 0)
                continue
            for source in on_error.expr or ():
                _eval(scope, source, {"error": details})
            if on_error.action == "retry":
                raise error
            record.meta["error"] = details
            if on_error.fallback is not None:
                return scope_render(scope, on_error.fallback, {"error": details})
            return {"_error": {"message": error.message, "handled": True}}
        raise AssertionError("unreachable")

    async def _execute(self, plan: ResourcePlan, scope: Scope, record: ResourceRecord,
                       emit: Emit | None) -> Any:
        for step in plan.before:
            await self._step(plan, step, scope, record, emit)
        output = None
        if plan.primary is not None:
            output = await self._action(plan, plan.primary, scope, record, emit, plan.timeout)
        record.output = output
        scope.state.records[plan.action_id] = record  # later steps can read the resource's output
        for step in plan.after:
            await self._step(plan, step, scope, record, emit)
        if plan.response is not None:
            output = await self._action(plan, Action("api_response", plan.response), scope, record, emit,
                                        plan.timeout)
        elif plan.primary is None and (plan.before or plan.after):
            output = _EXPRESSIONS_ONLY  # what KDeps answers for a resource of expressions only
        return output

    async def _step(self, plan: ResourcePlan, step: Step, scope: Scope, record: ResourceRecord,
                    emit: Emit | None) -> None:
        if step.program is not None:
            step.program.run(_env(scope))
        elif step.action is not None:
            limit = float(getattr(step.action.config, "timeout_duration", None) or DEFAULT_ACTION_TIMEOUT)
            await self._action(plan, step.action, scope, record, emit, limit)

    async def _action(self, plan: ResourcePlan, action: Action, scope: Scope, record: ResourceRecord,
                      emit: Emit | None, limit: float) -> Any:
        ctx = ActionRun(self, plan.action_id, scope, record, emit, asyncio.get_running_loop().time() + limit)
        if action.kind in _OWN_DEADLINE:
            return await get_action(action.kind)(ctx, action.config)
        async with asyncio.timeout(limit + _TIMEOUT_GRACE):
            return await get_action(action.kind)(ctx, action.config)

    async def run_tool(self, aid: str, arguments: dict[str, Any], state: RequestState,
                       emit: Emit | None) -> Any:
        """Run a tool resource (and any dependency not yet run) with the call's arguments."""
        pending = [d for d in reachable_order(self.requires, aid) if d != aid and d not in state.records]
        if pending:
            await self.run(state, emit=emit, order=pending)
        return await self.run_resource(aid, state, emit, arguments=arguments)


class ActionRun:
    """The `ActionContext` an action gets: this resource, this request."""

    __slots__ = ("_deadline", "_emit", "_record", "engine", "log", "project", "request", "resource_id",
                 "scope", "workflow_dir")

    def __init__(self, engine: Engine, aid: str, scope: Scope, record: ResourceRecord,
                 emit: Emit | None, deadline: float) -> None:
        self.engine, self.resource_id, self.scope, self._record = engine, aid, scope, record
        self._emit, self._deadline = emit, deadline
        self.project = engine.project
        self.workflow_dir = engine.project.root
        self.request = scope.state.request
        self.log = _resource_log(aid)

    def render(self, value: Any, *, bare: bool = True) -> Any:
        cls = value.__class__
        if cls is str:
            if _is_literal(value) if bare else "{{" not in value:
                return value
        elif cls in _SCALARS:
            return value
        elif cls is dict and not value:
            return {}
        return scope_render(self.scope, value, bare=bare)

    def evaluate(self, source: str) -> Any:
        return _eval(self.scope, source)

    def env(self, name: str) -> str | None:
        return self.scope.state.env.get(name)

    async def run_tool(self, action_id: str, arguments: dict[str, Any]) -> Any:
        return await self.engine.run_tool(action_id, arguments, self.scope.state, self._emit)

    def record(self, **meta: Any) -> None:
        self._record.meta.update(meta)

    def remember(self, key: str, value: Any) -> None:
        self.scope.set(key, value)

    def deadline(self) -> float | None:
        return self._deadline

    async def emit(self, event: dict[str, Any]) -> bool:
        if self._emit is None:
            return False
        await self._emit(event)
        return True


# -- helpers -------------------------------------------------------------------------------------

def _is_chain(order: list[str], requires: dict[str, list[str]]) -> bool:
    """True when each resource needs the one before it: nothing can run concurrently."""
    return all(order[i - 1] in requires[order[i]] for i in range(1, len(order)))


_SCALARS = frozenset({bool, int, float, type(None)})


@lru_cache(maxsize=4096)
def _is_literal(text: str) -> bool:
    """True when `text` renders to itself in an action's environment (no `{{`, not a bare
    expression): decided once per text, not once per request."""
    return "{{" not in text and not is_bare_expression(text, KNOWN_NAMES)


@lru_cache(maxsize=1024)
def _resource_log(aid: str) -> logging.Logger:
    return logging.getLogger(f"kdeps.resource.{aid}")


def _env(scope: Scope, variables: dict[str, Any] | None = None) -> Env:
    cached: Env | None = getattr(scope, "_env", None)
    if cached is None or variables:
        base = {"item": scope.items["current"]} if "all" in scope.items else {}  # `item.org` in items
        env = scope.env({**base, **variables} if variables else base)
        if not variables:
            scope._env = env  # type: ignore[attr-defined]
        return env
    return cached


def _run(aid: str, source: str, program: Program, scope: Scope) -> Any:
    """A precompiled check or skip condition; its failure names the resource and the expression."""
    try:
        return program.run(_env(scope))
    except ExprError as err:
        raise ResourceError(aid, f"expression error in `{source}`: {err.message}", 500) from None


def _eval(scope: Scope, source: Any, variables: dict[str, Any] | None = None) -> Any:
    """An always-expression field: plain source, or a whole `{{ }}` template."""
    if not isinstance(source, str):
        return source
    return evaluate(unbrace(source), _env(scope, variables))


def scope_render(scope: Scope, value: Any, variables: dict[str, Any] | None = None, *,
                 bare: bool = True) -> Any:
    return render(value, _env(scope, variables), bare=bare)


def _truthy(value: Any) -> bool:
    return bool(value) and value is not None


def _check_restrictions(plan: ResourcePlan, request: RequestData) -> None:
    if plan.methods and request.method.upper() not in plan.methods:
        raise Skipped
    if plan.routes and request.route not in plan.routes and request.path not in plan.routes:
        raise Skipped


def failure(exc: Exception, request: RequestData) -> ResponseData:
    """The answer for a request that failed: a KdepsError's own status and envelope; anything else is a
    bug, logged with its traceback and answered 500 without one."""
    meta = envelope.request_meta(request.request_id, request.path, request.method)
    if not isinstance(exc, KdepsError):
        log.error("request %s failed unexpectedly: %s: %s", request.request_id, type(exc).__name__, exc,
                  exc_info=exc)
        exc = KdepsError("internal server error")
    status = exc.status if 400 <= exc.status <= 599 else 500
    return ResponseData(status, exc.envelope(meta))


def _as_resource_error(aid: str, err: KdepsError) -> ResourceError:
    from kdeps.llm.errors import LLMError, LLMTimeoutError

    if isinstance(err, LLMTimeoutError):
        return ResourceError(aid, str(err), 504)
    if observability.missing_key(err):
        return ResourceError(aid, str(err), 503)
    if isinstance(err, LLMError):
        return ResourceError(aid, str(err), 502)
    if isinstance(err, ExprError):
        return ResourceError(aid, f"expression error: {err}", 500)
    return ResourceError(aid, str(err), 500)


def _error_object(error: ResourceError) -> dict[str, Any]:
    kind = {504: "TIMEOUT", 400: "VALIDATION_ERROR"}.get(error.status, "EXECUTION_ERROR")
    return {"message": error.message, "type": kind, "code": kind, "statusCode": error.status,
            "resource": error.resource, "details": None}


def _first_error(group: BaseExceptionGroup) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        return exc
    return group


def _llm_meta(state: RequestState) -> dict[str, Any]:
    return observability.llm_meta(state.records)
