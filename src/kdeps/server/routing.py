"""Route table: KDeps paths with `:param` segments (and an optional trailing `*`) matched per request."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kdeps.server.config import RouteSpec

_PARAM = re.compile(r"^:([A-Za-z_][A-Za-z0-9_]*)$")


def _normalise(path: str) -> str:
    return "/" + path.strip("/")


@dataclass(slots=True)
class Route:
    path: str  # as configured, e.g. /api/v1/items/:id
    methods: frozenset[str]
    pattern: re.Pattern[str]

    @classmethod
    def compile(cls, spec: RouteSpec) -> Route:
        parts = []
        for segment in _normalise(spec.path).strip("/").split("/"):
            if not segment:
                continue
            param = _PARAM.match(segment)
            if param:
                parts.append(f"/(?P<{param.group(1)}>[^/]+)")
            elif segment == "*":
                parts.append("/.+")
            else:
                parts.append("/" + re.escape(segment))
        regex = "".join(parts) or "/"
        methods = {m.upper() for m in spec.methods}
        if "GET" in methods:
            methods.add("HEAD")
        return cls(spec.path, frozenset(methods), re.compile(f"^{regex}$"))


@dataclass(slots=True)
class Match:
    route: Route | None  # None: the path matched but not the method
    params: dict[str, str]
    allowed: frozenset[str]  # methods any route on this path accepts (for 405 Allow)


class Router:
    """Finds the first configured route for a path and method; declaration order wins."""

    def __init__(self, specs: list[RouteSpec]) -> None:
        self.routes = [Route.compile(s) for s in specs]

    def match(self, path: str, method: str) -> Match | None:
        """None when no route has this path; Match(route=None) when only the method is wrong."""
        path = _normalise(path)
        allowed: set[str] = set()
        for route in self.routes:
            found = route.pattern.match(path)
            if not found:
                continue
            if method in route.methods:
                # scope['path'] is already percent-decoded by the ASGI server
                return Match(route, found.groupdict(), route.methods)
            allowed |= route.methods
        return Match(None, {}, frozenset(allowed)) if allowed else None

    def path_methods(self, path: str) -> frozenset[str]:
        """Every method any route on `path` accepts."""
        path = _normalise(path)
        methods: set[str] = set()
        for route in self.routes:
            if route.pattern.match(path):
                methods |= route.methods
        return frozenset(methods)
