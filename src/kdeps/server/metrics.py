"""Prometheus metrics served at `/metrics`: requests and latency per route, duration per resource,
LLM tokens and errors per backend. Counted per process (each `--workers` child has its own).

The counts are kept in plain dicts, updated from the event loop (no lock, no label validation per
request), and turned into Prometheus samples when `/metrics` is scraped: the exposition is what
prometheus_client's own Counter and Histogram give (`_total`, `_created`, cumulative `_bucket`s)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

try:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST
    from prometheus_client.metrics_core import Metric
except ImportError:  # pragma: no cover - a dependency; kept optional for embedders
    CollectorRegistry = None  # type: ignore[assignment,misc]

PATH = "/metrics"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_BOUNDS = tuple(float(b) for b in _BUCKETS)
_LE = (*(repr(b) for b in _BOUNDS), "+Inf")


class _Counter:
    """Label values -> [value, created]."""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name, self.help, self.labels = name, help_text, labels
        self.series: dict[tuple[str, ...], list[float]] = {}

    def inc(self, key: tuple[str, ...], amount: float = 1.0) -> None:
        entry = self.series.get(key)
        if entry is None:
            entry = self.series[key] = [0.0, time.time()]
        entry[0] += amount

    def metric(self) -> Any:
        family = Metric(self.name, self.help, "counter")
        for key, (value, created) in list(self.series.items()):
            labels = dict(zip(self.labels, key, strict=True))
            family.add_sample(self.name + "_total", labels, value)
            family.add_sample(self.name + "_created", labels, created)
        return family


class _Histogram:
    """Label values -> [count per bucket..., +Inf, sum, created] (bucket counts not cumulative)."""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name, self.help, self.labels = name, help_text, labels
        self.series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, key: tuple[str, ...], amount: float) -> None:
        entry = self.series.get(key)
        if entry is None:
            entry = self.series[key] = [0.0] * (len(_LE) + 1) + [time.time()]
        entry[bisect_left(_BOUNDS, amount)] += 1
        entry[-2] += amount

    def metric(self) -> Any:
        family = Metric(self.name, self.help, "histogram")
        for key, entry in list(self.series.items()):
            labels = dict(zip(self.labels, key, strict=True))
            total = 0.0
            for le, count in zip(_LE, entry, strict=False):
                total += count
                family.add_sample(self.name + "_bucket", {**labels, "le": le}, total)
            family.add_sample(self.name + "_count", labels, total)
            family.add_sample(self.name + "_sum", labels, entry[-2])
            family.add_sample(self.name + "_created", labels, entry[-1])
        return family


REQUESTS = _Counter("kdeps_requests", "HTTP requests answered.", ("method", "route", "status"))
REQUEST_SECONDS = _Histogram("kdeps_request_duration_seconds", "Time to answer a request.",
                             ("method", "route"))
RESOURCE_SECONDS = _Histogram("kdeps_resource_duration_seconds", "Time one resource took.",
                              ("resource", "status"))
LLM_TOKENS = _Counter("kdeps_llm_tokens", "LLM tokens used.", ("backend", "model", "type"))
LLM_CALLS = _Counter("kdeps_llm_calls", "LLM calls made.", ("backend", "model", "finish_reason"))
LLM_ERRORS = _Counter("kdeps_llm_errors", "LLM calls that failed.", ("backend",))
_ALL = (REQUESTS, REQUEST_SECONDS, RESOURCE_SECONDS, LLM_TOKENS, LLM_CALLS, LLM_ERRORS)


class _Collector:
    def collect(self) -> Iterator[Any]:
        for metric in _ALL:
            yield metric.metric()


if CollectorRegistry is not None:
    REGISTRY = CollectorRegistry()
    REGISTRY.register(_Collector())


def available() -> bool:
    return CollectorRegistry is not None


def request_done(method: str, route: str | None, status: int, seconds: float) -> None:
    label = route or "unmatched"  # never the raw path: its values are unbounded
    REQUESTS.inc((method, label, str(status)))
    REQUEST_SECONDS.observe((method, label), seconds)


def resource_done(resource: str, status: str, seconds: float) -> None:
    RESOURCE_SECONDS.observe((resource, status), seconds)


def llm_used(usage: dict[str, Any]) -> None:
    backend, model = str(usage.get("backend")), str(usage.get("model") or "")
    LLM_TOKENS.inc((backend, model, "input"), int(usage.get("input_tokens") or 0))
    LLM_TOKENS.inc((backend, model, "output"), int(usage.get("output_tokens") or 0))
    LLM_CALLS.inc((backend, model, str(usage.get("finish_reason") or "")),
                  max(1, int(usage.get("calls") or 1)))


def llm_error(backend: str) -> None:
    LLM_ERRORS.inc((backend,))


def exposition() -> tuple[bytes, str]:
    """The text format body and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
