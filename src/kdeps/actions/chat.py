"""The `chat` action: a resource's `run.chat` block rendered for one request, sent to an LLM backend
through `kdeps.llm.client`, with the tool loop, image files, JSON handling, streaming and fallback.

Output: the reply text, which also reads as KDeps' response object (`get('id').message.content`),
or the parsed JSON object when `jsonResponse` is on. A JSON reply that still lacks a
`jsonResponseKeys` key after one repair request is returned with that key null and a warning in the
resource's metadata, unless `strictJsonKeys` makes it a 502. Metadata recorded for `llm.prompt(id)`,
`llm.response(id)` and `llm.usage(id)`."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

from kdeps.actions.base import ActionContext
from kdeps.actions.chat_files import load_images
from kdeps.actions.chat_tools import CompiledTools, compile_tools, encode_result, run_calls
from kdeps.errors import KdepsError, ResourceError
from kdeps.expr.values import TextWithFields
from kdeps.llm import client
from kdeps.llm.errors import (
    AuthError,
    BadRequestError,
    LLMError,
    LLMTimeoutError,
)
from kdeps.llm.registry import UnknownBackendError, backend_info, check_supported, resolve_endpoint
from kdeps.llm.types import ChatRequest, ChatResult, Endpoint, Message, ToolCall, Usage

DEFAULT_TIMEOUT = 60.0
RAW_SHOWN = 500  # characters of a model's unparseable reply shown in an error


@dataclass(slots=True)
class _Run:
    """What one execution accumulates across model calls (tool rounds, JSON re-ask)."""

    ctx: ActionContext
    endpoint: Endpoint
    fallbacks: list[Endpoint]
    fallback_models: list[str]
    retry: client.RetryPolicy | None
    deadline: float
    timeout: float
    stream: bool
    usage: Usage = field(default_factory=Usage)
    attempts: int = 0
    calls: int = 0
    model: str = ""
    backend: str = ""
    prompt: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    finish_reason: str = ""


async def run(ctx: ActionContext, config: Any) -> Any:
    """Run the chat block `config` for the current request; the reply text or parsed JSON object."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    timeout = float(config.timeout_duration or DEFAULT_TIMEOUT)
    deadline = started + timeout
    outer = ctx.deadline()
    if outer is not None and outer < deadline:
        # The engine's deadline is computed from the same timeoutDuration a moment earlier: only
        # report a different duration when the outer bound is really tighter.
        if deadline - outer > 0.05:
            timeout = max(0.0, outer - started)
        deadline = outer
    state: _Run | None = None
    try:
        state, request, tools = _prepare(ctx, config, deadline, timeout)
        async with asyncio.timeout_at(deadline):
            output, prompt, text = await _converse(state, request, tools, config)
    except TimeoutError:
        backend = state.backend if state else "chat"
        raise ResourceError(ctx.resource_id, _timeout_message(backend, timeout), 504) from None
    except LLMError as exc:
        raise _resource_error(ctx.resource_id, exc, state, timeout) from None
    ctx.record(prompt=prompt, response=text, usage=_usage(state, loop.time() - started))
    if state.warnings:
        ctx.record(warnings=state.warnings)
    if isinstance(output, str):
        return TextWithFields(output, {"message": {"role": "assistant", "content": output},
                                       "model": state.model, "backend": state.backend, "done": True})
    return output


# -- preparing the request ---------------------------------------------------------------------------

def _text(ctx: ActionContext, value: Any) -> str | None:
    """A rendered optional string field (None/empty → None)."""
    if value is None:
        return None
    rendered = ctx.render(value)
    if rendered is None:
        return None
    text = rendered if isinstance(rendered, str) else str(rendered)
    return text if text.strip() else None


def _endpoint(ctx: ActionContext, name: str | None, base_url: str | None, api_key: str | None) -> Endpoint:
    """The rendered block values resolved by `kdeps.llm` (defaults, env, key); an unknown backend is a 400."""
    try:
        ollama_url = ctx.project.workflow.settings.agent_settings.ollama_url
    except AttributeError:
        ollama_url = None
    try:
        return resolve_endpoint(_text(ctx, name), base_url=_text(ctx, base_url), api_key=_text(ctx, api_key),
                                env=ctx.env, ollama_url=_text(ctx, ollama_url),
                                workdir=str(ctx.workflow_dir))
    except UnknownBackendError as exc:
        raise ResourceError(ctx.resource_id, str(exc), 400) from None


def _compose(ctx: ActionContext, config: Any) -> tuple[str | None, list[Message], str]:
    """System prompt, message list and the rendered prompt (for llm.prompt)."""
    system: list[str] = []
    messages: list[Message] = []
    for turn in config.scenario or []:
        role = (getattr(turn, "role", None) or "user").strip().lower()
        content = ctx.render(getattr(turn, "prompt", None))
        content = "" if content is None else str(content)
        if role == "system":
            if content.strip():
                system.append(content)
        else:
            messages.append(Message(role="assistant" if role == "assistant" else "user", content=content))
    prompt = ctx.render(config.prompt) if config.prompt is not None else ""
    prompt = "" if prompt is None else prompt if isinstance(prompt, str) else encode_result(prompt)
    role = (_text(ctx, config.role) or "user").strip().lower()
    if role == "system":
        if prompt.strip():
            system.append(prompt)
    elif prompt.strip() or not messages:
        messages.append(Message(role="assistant" if role == "assistant" else "user", content=prompt))
    return ("\n\n".join(system) or None), messages, prompt


def _json_instruction(keys: list[str]) -> str:
    text = "Answer with a single valid JSON object only: no prose and no code fences."
    if keys:
        text += " The JSON object must have these keys: " + ", ".join(keys) + "."
    return text


def _prepare(ctx: ActionContext, config: Any, deadline: float,
             timeout: float) -> tuple[_Run, ChatRequest, CompiledTools | None]:
    endpoint = _endpoint(ctx, config.backend, config.base_url, config.api_key)
    model = _text(ctx, config.model)
    if model is None and backend_info(endpoint.backend).default_model is None:
        raise ResourceError(ctx.resource_id, "chat needs a model (run.chat.model)", 400)
    system, messages, prompt = _compose(ctx, config)
    conversation = getattr(ctx.request, "conversation", None)  # the OpenAI endpoint's client conversation
    if conversation is not None and not config.scenario:
        system, messages = conversation.adopt(system, messages)
    json_keys = [str(k) for k in (config.json_response_keys or [])]
    if config.json_response:
        instruction = _json_instruction(json_keys)
        system = f"{system}\n\n{instruction}" if system else instruction
    images = []
    if config.files:
        rendered = [ctx.render(entry) for entry in config.files]
        images = load_images(ctx.resource_id, rendered, ctx.workflow_dir, list(ctx.request.files or []))
    if images:
        target = next((m for m in reversed(messages) if m.role == "user"), None)
        if target is None:
            target = Message(role="user", content="")
            messages.append(target)
        target.images.extend(images)
    tools = compile_tools(config) if config.tools else None
    request = ChatRequest(
        model=model or "",
        messages=messages,
        system=system,
        tools=list(tools.specs) if tools else [],
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        top_p=config.top_p,
        frequency_penalty=config.frequency_penalty,
        presence_penalty=config.presence_penalty,
        context_length=config.context_length,
        json_mode=bool(config.json_response),
        json_keys=json_keys,
        stream=bool(config.stream),
        timeout=timeout,
    )
    if conversation is not None:
        conversation.fill(request, json_set=bool(config.json_response))
    try:
        check_supported(request, endpoint)
    except BadRequestError as exc:
        raise ResourceError(ctx.resource_id, exc.message, 400) from None
    fallbacks: list[Endpoint] = []
    fallback_models: list[str] = []
    for alt in config.fallback or []:
        fallbacks.append(_endpoint(ctx, alt.backend, alt.base_url, alt.api_key))
        fallback_models.append(_text(ctx, alt.model) or model or "")
    state = _Run(ctx=ctx, endpoint=endpoint, fallbacks=fallbacks, fallback_models=fallback_models,
                 retry=_retry_policy(config.retry), deadline=deadline, timeout=timeout,
                 stream=bool(config.stream), backend=endpoint.backend, model=model or "", prompt=prompt)
    state.secrets = [e.api_key for e in [endpoint, *fallbacks] if e.api_key]
    return state, request, tools


def _retry_policy(retry: Any) -> client.RetryPolicy | None:
    """The resource's `retry:` block; None lets the client use its default policy."""
    return client.RetryPolicy.from_config(retry) if retry is not None else None


# -- talking to the model ----------------------------------------------------------------------------

async def _converse(state: _Run, request: ChatRequest, tools: CompiledTools | None,
                    config: Any) -> tuple[Any, str, str]:
    """The tool loop, then JSON handling. Returns (output, prompt text, final reply text)."""
    prompt = state.prompt
    max_rounds = int(getattr(config, "max_tool_rounds", None) or 5)
    result = await _answer(state, request, tools, max_rounds)
    if not request.json_mode:
        return result.text, prompt, result.text
    value, problem = _parse_json(result.text, request.json_keys)
    if problem is None:
        return value, prompt, result.text
    state.ctx.log.info("chat %s: reply was not the JSON asked for (%s); asking once more",
                       state.ctx.resource_id, problem)
    request.messages.append(Message(role="assistant", content=result.text))
    request.messages.append(Message(role="user", content=f"Your reply was not usable: {problem}. "
                                    + _json_instruction(request.json_keys)))
    result = await _answer(state, request, tools, max_rounds)
    value, problem = _parse_json(result.text, request.json_keys)
    if problem is None:
        return value, prompt, result.text
    raw = result.text if len(result.text) <= RAW_SHOWN else result.text[:RAW_SHOWN] + "…"
    if config.strict_json_keys:
        raise ResourceError(state.ctx.resource_id,
                            f"{state.backend} model {state.model} did not return the JSON asked for "
                            f"({problem}); its reply: {raw!r}", 502)
    # KDeps answers with what the model gave; the gap is reported, not fatal.
    warning = f"{state.backend} model {state.model} did not return the JSON asked for ({problem})"
    state.ctx.log.warning("chat %s: %s; its reply: %r", state.ctx.resource_id, warning, raw)
    state.warnings.append(warning)
    return _lenient_json(value, problem, result.text, request.json_keys), prompt, result.text


async def _answer(state: _Run, request: ChatRequest, tools: CompiledTools | None,
                  max_rounds: int) -> ChatResult:
    """Call the model until it stops asking for tools."""
    rounds = 0
    while True:
        result = await _call(state, request)
        if not result.tool_calls or tools is None:
            return result
        if rounds >= max_rounds:
            names = ", ".join(sorted({c.name for c in result.tool_calls}))
            raise ResourceError(state.ctx.resource_id,
                                f"{state.backend} model {state.model} still asked for tools ({names}) after "
                                f"{max_rounds} tool rounds (maxToolRounds)", 502)
        rounds += 1
        request.messages.append(Message(role="assistant", content=result.text,
                                        tool_calls=list(result.tool_calls)))
        for call in result.tool_calls:
            _remember_arguments(state.ctx, call, tools.params.get(call.name, frozenset()))
        messages, records = await run_calls(state.ctx, tools, result.tool_calls, state.ctx.log)
        request.messages.extend(messages)
        state.tool_calls.extend(records)


def _remember_arguments(ctx: ActionContext, call: ToolCall, declared: frozenset[str]) -> None:
    """KDeps keeps each tool argument in request memory twice, as `tool_<tool>_<name>` and as
    `<name>`, so later resources read them with get(). Only declared parameters are kept: a key the
    model adds must not shadow request values."""
    for name, value in (call.arguments or {}).items():
        if name not in declared:
            continue
        ctx.remember(f"tool_{call.name}_{name}", value)
        ctx.remember(name, value)


async def _call(state: _Run, request: ChatRequest) -> ChatResult:
    """One model call through the fallback chain (streamed when asked: deltas go to the client)."""
    loop = asyncio.get_running_loop()
    request.timeout = max(0.001, state.deadline - loop.time())
    alternatives = list(zip(state.fallbacks, state.fallback_models, strict=True))
    result = await client.complete_with_fallback(request, state.endpoint, alternatives, retry=state.retry,
                                                 on_delta=_emitter(state) if state.stream else None)
    _tally(state, result)
    if (conversation := getattr(state.ctx.request, "conversation", None)) is not None:
        conversation.finish_reason = result.finish_reason
    return result


def _emitter(state: _Run) -> Any:
    listening = True

    async def emit(text: str) -> None:
        nonlocal listening
        if listening and text:
            listening = await state.ctx.emit({"type": "delta", "resource": state.ctx.resource_id,
                                              "text": text})

    return emit


def _tally(state: _Run, result: ChatResult) -> None:
    state.calls += 1
    state.attempts += max(1, result.attempts or 1)
    state.usage.input_tokens += result.usage.input_tokens
    state.usage.output_tokens += result.usage.output_tokens
    if result.backend:
        state.backend = result.backend
    if result.model:
        state.model = result.model
    state.finish_reason = result.finish_reason or state.finish_reason


# -- JSON ----------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def _parse_json(text: str, keys: list[str]) -> tuple[Any, str | None]:
    """The JSON value in a reply (None when there is none) and what is wrong with it, if anything."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        value = json.loads(body)
    except ValueError:
        value = _embedded_object(body)
        if value is None:
            return None, "it is not valid JSON"
    if keys:
        if not isinstance(value, dict):
            return value, "it is not a JSON object"
        missing = [k for k in keys if k not in value]
        if missing:
            return value, "missing keys: " + ", ".join(missing)
    return value, None


def _lenient_json(value: Any, problem: str, text: str, keys: list[str]) -> dict[str, Any]:
    """What KDeps answers for a reply that is not the JSON asked for: the object with each missing
    key null, or (no object at all) the keys null beside the parse error and the reply text."""
    if isinstance(value, dict):
        return {**value, **{k: None for k in keys if k not in value}}
    return {**dict.fromkeys(keys), "error": f"Failed to parse JSON response: {problem}", "content": text}


def _embedded_object(text: str) -> Any:
    """A JSON object surrounded by prose ("Sure! {...}"), or None."""
    start = text.find("{")
    while start != -1:
        try:
            value, _end = json.JSONDecoder().raw_decode(text, start)
            return value
        except ValueError:
            start = text.find("{", start + 1)
    return None


# -- metadata and errors ---------------------------------------------------------------------------

def _usage(state: _Run | None, elapsed: float) -> dict[str, Any]:
    assert state is not None
    return {
        "input_tokens": state.usage.input_tokens,
        "output_tokens": state.usage.output_tokens,
        "total_tokens": state.usage.input_tokens + state.usage.output_tokens,
        "model": state.model,
        "backend": state.backend,
        "latency_ms": round(elapsed * 1000, 1),
        "attempts": state.attempts,
        "calls": state.calls,
        "tool_calls": state.tool_calls,
        "finish_reason": state.finish_reason,
    }


def _timeout_message(backend: str, timeout: float) -> str:
    return f"no complete answer from {backend} within {timeout:g}s (timeoutDuration, retries included)"


def _resource_error(resource: str, exc: LLMError, state: _Run | None, timeout: float) -> KdepsError:
    backend = exc.backend or (state.backend if state else "llm")
    status = f" HTTP {exc.upstream_status}" if exc.upstream_status else ""
    message = f"{backend}{status}: {exc.message}"
    code = 502
    if isinstance(exc, LLMTimeoutError):
        message = _timeout_message(backend, timeout)
        code = 504
    elif isinstance(exc, AuthError) and not exc.upstream_status:
        code = 400
    return ResourceError(resource, client.redact(message, state.secrets if state else []), code)

