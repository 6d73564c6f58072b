"""CORS as the workflow's `cors` block says: preflight answers and headers on actual responses.

`allowOrigins: ["*"]` answers a literal `*` and never `Allow-Credentials` (whatever `allowCredentials`
says); credentials are allowed only for origins listed by name."""

from __future__ import annotations

from kdeps.server.config import CorsSettings

# Request headers a browser may send without them being listed (the CORS-safelisted ones).
_SAFELISTED = frozenset({"accept", "accept-language", "content-language", "content-type"})


class Cors:
    def __init__(self, settings: CorsSettings) -> None:
        self.settings = settings
        self.enabled = settings.enabled
        self.any_origin = "*" in settings.allow_origins
        self.origins = frozenset(o.rstrip("/") for o in settings.allow_origins if o != "*")
        self.allow_headers = frozenset(h.lower() for h in settings.allow_headers)
        self.any_header = "*" in settings.allow_headers

    def origin_allowed(self, origin: str) -> bool:
        return self.any_origin or origin.rstrip("/") in self.origins

    def _origin_headers(self, origin: str) -> dict[str, str]:
        # `*` means any site may read responses, so never with credentials: echoing an arbitrary Origin
        # with Allow-Credentials would let every site read a logged-in user's answers. Credentials go
        # only to origins listed by name.
        if self.any_origin:
            return {"access-control-allow-origin": "*"}
        headers = {"access-control-allow-origin": origin, "vary": "Origin"}
        if self.settings.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        return headers

    def is_preflight(self, method: str, headers: dict[str, str]) -> bool:
        return (self.enabled and method == "OPTIONS" and "origin" in headers
                and "access-control-request-method" in headers)

    def preflight(self, headers: dict[str, str],
                  route_methods: frozenset[str]) -> tuple[int, dict[str, str], str]:
        """Status, headers and a reason ('' when allowed) for a preflight request."""
        origin = headers.get("origin", "")
        if not self.origin_allowed(origin):
            return 403, {}, f"origin '{origin}' is not allowed"
        methods = self.settings.allow_methods or sorted(route_methods - {"HEAD"})
        wanted = headers.get("access-control-request-method", "").upper()
        if wanted not in methods:
            return 403, {}, f"method '{wanted}' is not allowed for cross-origin requests"
        requested = [h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",")]
        requested = [h for h in requested if h]
        if not self.any_header:
            refused = [h for h in requested if h not in self.allow_headers and h not in _SAFELISTED]
            if refused:
                return 403, {}, f"header '{refused[0]}' is not allowed for cross-origin requests"
        out = self._origin_headers(origin)
        out["access-control-allow-methods"] = ", ".join(methods)
        allowed_headers = requested if self.any_header else self.settings.allow_headers
        if allowed_headers:
            out["access-control-allow-headers"] = ", ".join(allowed_headers)
        out["access-control-max-age"] = str(self.settings.max_age)
        if "vary" in out:
            out["vary"] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        return 204, out, ""

    def response_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """Headers for an actual (non-preflight) response; empty when no allowed Origin was sent."""
        origin = headers.get("origin")
        if not self.enabled or not origin or not self.origin_allowed(origin):
            return {}
        out = self._origin_headers(origin)
        if self.settings.expose_headers:
            out["access-control-expose-headers"] = ", ".join(self.settings.expose_headers)
        return out
