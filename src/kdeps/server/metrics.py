"""Prometheus metrics served at `/metrics`: requests and latency per route, duration per resource,
LLM tokens and errors per backend. Counted per process (each `--workers` child has its own)."""

from __future__ import annotations

from typing import Any

try:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST
except ImportError:  # pragma: no cover - a dependency; kept optional for embedders
    CollectorRegistry = None  # type: ignore[assignment,misc]

PATH = "/metrics"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

if CollectorRegistry is not None:
    REGISTRY = CollectorRegistry()
    REQUESTS = Counter("kdeps_requests", "HTTP requests answered.", ["method", "route", "status"],
                       registry=REGISTRY)
    REQUEST_SECONDS = Histogram("kdeps_request_duration_seconds", "Time to answer a request.",
                                ["method", "route"], buckets=_BUCKETS, registry=REGISTRY)
    RESOURCE_SECONDS = Histogram("kdeps_resource_duration_seconds", "Time one resource took.",
                                 ["resource", "status"], buckets=_BUCKETS, registry=REGISTRY)
    LLM_TOKENS = Counter("kdeps_llm_tokens", "LLM tokens used.", ["backend", "model", "type"],
                         registry=REGISTRY)
    LLM_CALLS = Counter("kdeps_llm_calls", "LLM calls made.", ["backend", "model", "finish_reason"],
                        registry=REGISTRY)
    LLM_ERRORS = Counter("kdeps_llm_errors", "LLM calls that failed.", ["backend"], registry=REGISTRY)


# children by label values: prometheus' own labels() validates and locks on every call
_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def available() -> bool:
    return CollectorRegistry is not None


def request_done(method: str, route: str | None, status: int, seconds: float) -> None:
    if CollectorRegistry is None:
        return
    label = route or "unmatched"  # never the raw path: its values are unbounded
    _child(REQUESTS, method, label, str(status)).inc()
    _child(REQUEST_SECONDS, method, label).observe(seconds)


def resource_done(resource: str, status: str, seconds: float) -> None:
    if CollectorRegistry is not None:
        _child(RESOURCE_SECONDS, resource, status).observe(seconds)


def llm_used(usage: dict[str, Any]) -> None:
    if CollectorRegistry is None:
        return
    backend, model = str(usage.get("backend")), str(usage.get("model") or "")
    _child(LLM_TOKENS, backend, model, "input").inc(int(usage.get("input_tokens") or 0))
    _child(LLM_TOKENS, backend, model, "output").inc(int(usage.get("output_tokens") or 0))
    _child(LLM_CALLS, backend, model, str(usage.get("finish_reason") or "")).inc(
        max(1, int(usage.get("calls") or 1)))


def llm_error(backend: str) -> None:
    if CollectorRegistry is not None:
        _child(LLM_ERRORS, backend).inc()


def exposition() -> tuple[bytes, str]:
    """The text format body and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
