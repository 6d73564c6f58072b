"""`/metrics` as kdeps keeps the counts (plain dicts, turned into samples when scraped) reads exactly as
prometheus_client's own Counter and Histogram would for the same events."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from kdeps.server import metrics

_CREATED = re.compile(r"^(\w+_created\{[^}]*\}) \S+$", re.MULTILINE)


def _reference(events: list[tuple[str, tuple[object, ...]]]) -> str:
    registry = CollectorRegistry()
    buckets = metrics._BUCKETS
    requests = Counter("kdeps_requests", "HTTP requests answered.", ["method", "route", "status"],
                       registry=registry)
    request_seconds = Histogram("kdeps_request_duration_seconds", "Time to answer a request.",
                                ["method", "route"], buckets=buckets, registry=registry)
    resource_seconds = Histogram("kdeps_resource_duration_seconds", "Time one resource took.",
                                 ["resource", "status"], buckets=buckets, registry=registry)
    tokens = Counter("kdeps_llm_tokens", "LLM tokens used.", ["backend", "model", "type"], registry=registry)
    calls = Counter("kdeps_llm_calls", "LLM calls made.", ["backend", "model", "finish_reason"],
                    registry=registry)
    errors = Counter("kdeps_llm_errors", "LLM calls that failed.", ["backend"], registry=registry)
    for kind, args in events:
        if kind == "request":
            method, route, status, seconds = args
            requests.labels(method, route, str(status)).inc()
            request_seconds.labels(method, route).observe(seconds)
        elif kind == "resource":
            resource, status, seconds = args
            resource_seconds.labels(resource, status).observe(seconds)
        elif kind == "llm":
            backend, model, inp, out, finish = args
            tokens.labels(backend, model, "input").inc(inp)
            tokens.labels(backend, model, "output").inc(out)
            calls.labels(backend, model, finish).inc()
        else:
            errors.labels(*args).inc()
    return generate_latest(registry).decode()


def _without_times(text: str) -> str:
    return _CREATED.sub(r"\1 T", text)


def test_the_exposition_is_prometheus_clients_own(monkeypatch) -> None:
    for metric in metrics._ALL:
        monkeypatch.setattr(metric, "series", {})
    events: list[tuple[str, tuple[object, ...]]] = [
        ("request", ("POST", "/api/v1/run", 200, 0.0042)),
        ("request", ("POST", "/api/v1/run", 200, 0.005)),  # exactly on a bound: that bucket
        ("request", ("GET", "unmatched", 404, 0.3)),
        ("request", ("POST", "/api/v1/run", 502, 500.0)),  # past the last bound: +Inf only
        ("resource", ("chat", "ok", 0.02)),
        ("resource", ("chat", "error", 1.5)),
        ("llm", ("openai", "gpt-4o-mini", 12, 3, "stop")),
        ("llm", ("openai", "gpt-4o-mini", 7, 1, "length")),
        ("error", ("anthropic",)),
    ]
    for kind, args in events:
        if kind == "request":
            method, route, status, seconds = args
            metrics.request_done(method, None if route == "unmatched" else route, status, seconds)  # type: ignore[arg-type]
        elif kind == "resource":
            metrics.resource_done(*args)  # type: ignore[arg-type]
        elif kind == "llm":
            backend, model, inp, out, finish = args
            metrics.llm_used({"backend": backend, "model": model, "input_tokens": inp, "output_tokens": out,
                              "finish_reason": finish, "calls": 1})
        else:
            metrics.llm_error(*args)  # type: ignore[arg-type]
    ours = metrics.exposition()[0].decode()
    assert _without_times(ours) == _without_times(_reference(events))
    assert 'kdeps_requests_total{method="POST",route="/api/v1/run",status="200"} 2.0' in ours
    assert 'kdeps_request_duration_seconds_bucket{le="0.005",method="POST",route="/api/v1/run"} 2.0' in ours
