"""What a run leaves behind for people and tools: the per-resource log line (`kdeps.run`), Prometheus
metrics (`kdeps.server.metrics`) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set and the `otel` extra
is installed, OpenTelemetry spans: request → resource → LLM call, with the GenAI attributes."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from kdeps.errors import KdepsError

run_log = logging.getLogger("kdeps.run")

TRUNCATED = frozenset({"length", "max_tokens", "MAX_TOKENS"})

_tracer: Any = None  # an opentelemetry Tracer once tracing is on


def tracing_enabled() -> bool:
    return _tracer is not None


def setup_tracing(provider: Any = None) -> bool:
    """Turn tracing on: with `provider` (tests pass one with an in-memory exporter), or from the
    standard OTEL_* variables when OTEL_EXPORTER_OTLP_ENDPOINT is set. False when it stays off."""
    global _tracer
    if provider is None:
        if _tracer is not None:
            return True
        if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            return False
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            logging.getLogger("kdeps").warning(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not installed: "
                "pip install 'kdeps[otel]'")
            return False
        service = os.environ.get("OTEL_SERVICE_NAME", "kdeps")
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _tracer = provider.get_tracer("kdeps")
    return True


def reset_tracing() -> None:
    global _tracer
    _tracer = None


# -- one request ---------------------------------------------------------------------------------

def start_request(method: str, path: str) -> Any:
    """Open the request span (made current for the resources it runs); None when tracing is off."""
    if _tracer is None:
        return None
    from opentelemetry import context, trace

    span = _tracer.start_span(f"{method} {path}", kind=trace.SpanKind.SERVER,
                              attributes={"http.request.method": method, "url.path": path})
    token = context.attach(trace.set_span_in_context(span))
    return span, token


def end_request(handle: Any, status: int, route: str | None) -> None:
    if handle is None:
        return
    from opentelemetry import context, trace

    span, token = handle
    span.set_attribute("http.response.status_code", status)
    if route:
        span.set_attribute("http.route", route)
        span.update_name(f"{span.name.split(' ')[0]} {route}")
    if status >= 500:
        span.set_status(trace.Status(trace.StatusCode.ERROR))
    span.end()
    with contextlib.suppress(Exception):
        context.detach(token)


# -- one resource --------------------------------------------------------------------------------

@contextlib.contextmanager
def resource(aid: str, plan: Any, state: Any) -> Iterator[None]:
    """Around one resource of one request: its log line, metrics and span."""
    from kdeps.server import metrics

    started = time.perf_counter()
    span = None
    if _tracer is not None:
        span = _tracer.start_span(f"resource {aid}", attributes={
            "kdeps.resource": aid, "code.filepath": str(getattr(plan, "file", "")),
            "code.lineno": int(getattr(plan, "line", 0) or 0)})
    request_id = getattr(getattr(state, "request", None), "request_id", None)
    try:
        if span is not None:
            from opentelemetry import trace

            with trace.use_span(span, end_on_exit=False):
                yield
        else:
            yield
    except BaseException as exc:
        seconds = time.perf_counter() - started
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        metrics.resource_done(aid, "error", seconds)
        backend = _llm_backend(exc)
        if backend:
            metrics.llm_error(backend)
        if run_log.isEnabledFor(logging.INFO):
            run_log.info("resource %s failed in %.1f ms: %s", aid, seconds * 1000, message,
                         extra={"resource": aid, "status": "error", "durationMs": round(seconds * 1000, 2),
                                "requestId": request_id, **_where(plan)})
        if span is not None:
            from opentelemetry import trace

            span.set_status(trace.Status(trace.StatusCode.ERROR, message[:200]))
            span.end()
        raise
    seconds = time.perf_counter() - started
    record = getattr(state, "records", {}).get(aid)
    meta = getattr(record, "meta", {}) or {}
    status = str(meta.get("status") or "ok")  # ok, skipped, or error (handled by onError)
    metrics.resource_done(aid, status, seconds)
    usage = meta.get("usage")
    if isinstance(usage, dict) and usage.get("backend"):
        metrics.llm_used(usage)
        if span is not None:
            _llm_span(span, usage)
    if run_log.isEnabledFor(logging.INFO):
        run_log.info("resource %s %s in %.1f ms", aid, status, seconds * 1000,
                     extra={"resource": aid, "status": status, "durationMs": round(seconds * 1000, 2),
                            "requestId": request_id})
    if span is not None:
        span.set_attribute("kdeps.resource.status", status)
        span.end()


def _where(plan: Any) -> dict[str, Any]:
    file = getattr(plan, "file", None)
    return {"file": str(file), "line": getattr(plan, "line", None)} if file else {}


def _llm_backend(exc: BaseException) -> str | None:
    """The backend of an LLM error, also when an action wrapped it in a ResourceError."""
    from kdeps.llm.errors import LLMError

    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        if isinstance(seen, LLMError):
            return seen.backend or None
        seen = seen.__cause__ or seen.__context__
    return None


def _llm_span(parent: Any, usage: dict[str, Any]) -> None:
    """A child span for the model call(s), placed at the end of the resource and as long as the
    calls took, with the OpenTelemetry GenAI attributes."""
    from opentelemetry import trace

    end = time.time_ns()
    start = end - int(float(usage.get("latency_ms") or 0) * 1e6)
    model = str(usage.get("model") or "")
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": str(usage.get("backend")),
        "gen_ai.provider.name": str(usage.get("backend")),
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": int(usage.get("input_tokens") or 0),
        "gen_ai.usage.output_tokens": int(usage.get("output_tokens") or 0),
    }
    if usage.get("finish_reason"):
        attributes["gen_ai.response.finish_reasons"] = [str(usage["finish_reason"])]
    assert _tracer is not None
    span = _tracer.start_span(f"chat {model}", context=trace.set_span_in_context(parent),
                              kind=trace.SpanKind.CLIENT, start_time=start, attributes=attributes)
    span.end(end_time=end)


# -- meta -----------------------------------------------------------------------------------------

def llm_meta(records: dict[str, Any]) -> dict[str, Any]:
    """`meta` of a response: the first model (as before) and every model call by resource, with
    tokens and finish reason; `truncated` lists resources whose answer hit maxTokens."""
    calls: list[dict[str, Any]] = []
    for aid, record in records.items():
        usage = record.meta.get("usage")
        if isinstance(usage, dict) and usage.get("backend"):
            calls.append({"resource": aid, "backend": usage.get("backend"), "model": usage.get("model"),
                          "inputTokens": int(usage.get("input_tokens") or 0),
                          "outputTokens": int(usage.get("output_tokens") or 0),
                          "finishReason": usage.get("finish_reason") or None})
    if not calls:
        return {}
    meta: dict[str, Any] = {"model": calls[0]["model"], "backend": calls[0]["backend"], "llm": calls}
    truncated = [c["resource"] for c in calls if c["finishReason"] in TRUNCATED]
    if truncated:
        meta["truncated"] = truncated
    return meta


def missing_key(err: KdepsError) -> bool:
    """A backend key that is not set (a server misconfiguration: answered 503, not 4xx)."""
    from kdeps.errors import ResourceError
    from kdeps.llm.errors import AuthError

    if isinstance(err, ResourceError) and err.status == 400 and "no API key" in err.message:
        return True  # the chat action's own check, before any LLM call
    seen: BaseException | None = err
    for _ in range(3):
        if seen is None:
            return False
        if isinstance(seen, AuthError) and not seen.upstream_status:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
