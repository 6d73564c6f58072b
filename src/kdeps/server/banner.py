"""The startup banner: every route as a full URL, the built-in endpoints, and a curl line to paste."""

from __future__ import annotations

from typing import Any

from kdeps.server import metrics

_PROBES = ("/health", "/ready", metrics.PATH)


def base_url(host: str, port: int) -> str:
    """The URL a client on this machine uses (a wildcard bind is reached through loopback)."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def lines(host: str, port: int, settings: Any) -> list[str]:
    url = base_url(host, port)
    out = [f"Starting API server on {host}:{port}"]
    width = max((len(m) + len(r.path) for r in settings.routes for m in r.methods), default=0) + 1
    for route in settings.routes:
        out.extend(f"  {m} {route.path}{' ' * (width - len(m) - len(route.path))} {url}{route.path}"
                   for m in route.methods)
    out.append("Built in: " + "  ".join(f"{url}{p}" for p in _PROBES))
    example = _curl(url, settings.routes)
    if example:
        out.append(f"Try it:   {example}")
    return out


def _curl(url: str, routes: Any) -> str | None:
    """A curl command for the first route without path parameters (POST preferred)."""
    plain = [r for r in routes if ":" not in r.path and "{" not in r.path]
    for route in plain:
        if "POST" in route.methods:
            return (f"curl -s -X POST {url}{route.path} -H 'Content-Type: application/json' "
                    "-d '{\"q\": \"hello\"}'")
    for route in plain:
        if "GET" in route.methods:
            return f"curl -s '{url}{route.path}?q=hello'"
    return None
