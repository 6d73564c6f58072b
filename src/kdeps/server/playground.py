"""The browser playground at `/`, the API docs at `/docs` and `/openapi.json` (`kdeps run --ui`).

Everything is served from files inside the package (Swagger UI's from the `openapi-ui-bundles`
package): no CDN, works offline. Pages carry a strict Content-Security-Policy. Without an auth token
the playground answers only requests from loopback addressed to a loopback host name (so a remote
client, or a web page that re-binds its DNS name to 127.0.0.1, cannot use it); with a token, the pages
are public and what describes the agent needs the token."""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdeps.addresses import is_loopback
from kdeps.errors import HTTPError
from kdeps.server.config import ServerSettings
from kdeps.server.openapi import describe_routes, openapi_document

TOKEN_ENV = "KDEPS_API_AUTH_TOKEN"
TRACE_HEADER = "x-kdeps-trace"  # sent by the page to ask for the run's trace; answered the same way
PREFIX = "/_kdeps/"
STATIC = Path(__file__).parent / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
          ".json": "application/json"}
_SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
_COMMON = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "cache-control": "no-cache"}
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            "form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
# Swagger UI draws its icons from data: URLs in its stylesheet
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")

Answer = tuple[int, bytes, dict[str, str]]


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    headers: dict[str, str]


class Playground:
    """Answers the playground's own paths; the server asks it first for every request."""

    def __init__(self, project: Any, settings: ServerSettings, *, token: str | None, openai: bool,
                 routed: frozenset[str], session_cookie: str) -> None:
        self.token = (token or os.environ.get(TOKEN_ENV) or "").encode() or None
        self.session_cookie = session_cookie
        auth = self.token is not None
        meta = project.workflow.metadata
        routes = [r.as_json() for r in describe_routes(project, settings)]
        self._agent = _json({"name": meta.name, "description": meta.description,
                             "version": str(meta.version or ""), "routes": routes, "openai": openai,
                             "auth": auth, "sessionCookie": session_cookie})
        self._openapi = _json(openapi_document(project, settings, openai=openai, auth=auth))
        # each also lives under /_kdeps/, for a workflow that routes the short path itself
        shown = {"/": "playground.html", "/docs": "docs.html", "/openapi.json": ""}
        self.pages = {**{PREFIX + p.lstrip("/"): f for p, f in shown.items()},
                      **{p: f for p, f in shown.items() if p not in routed}}
        self.page_path = "/" if "/" not in routed else PREFIX
        self._files: dict[str, _File] = {}

    # -- routing ------------------------------------------------------------------------------------
    def handles(self, path: str) -> bool:
        return path in self.pages or path.startswith(PREFIX)

    def answer(self, method: str, path: str, headers: dict[str, str], ip: str) -> Answer | None:
        """The response for one of the playground's paths, or None when `path` is not one."""
        if not self.handles(path):
            return None
        if not self.allowed(headers, ip):
            return _error(403, "the playground answers only local requests (127.0.0.1, localhost) "
                               f"unless an auth token is configured ({TOKEN_ENV})")
        if path == "/_kdeps/session/new":
            if method != "POST":
                return _error(405, "use POST", {"allow": "POST"})
            # a header no cross-site form can send: only the page itself ends a session
            if headers.get("x-kdeps-playground") != "1":
                return _error(403, "missing X-Kdeps-Playground header")
            return 204, b"", {**_COMMON, "set-cookie": f"{self.session_cookie}=; Path=/; Max-Age=0; "
                                                     "HttpOnly; SameSite=Lax"}
        if method not in ("GET", "HEAD"):
            return _error(405, f"method {method} is not allowed on {path}", {"allow": "GET, HEAD"})
        name = self.pages.get(path)
        if name == "" or path == "/_kdeps/agent":
            if not self._authorised(headers):
                return _error(401, "missing or invalid bearer token", {"www-authenticate": "Bearer"})
            body = self._agent if name is None else self._openapi
            return 200, body, {**_COMMON, "content-type": "application/json"}
        file: _File | None = None
        if name is not None:
            file = self._file(STATIC / name, DOCS_CSP if name == "docs.html" else PAGE_CSP)
        elif path.startswith("/_kdeps/static/"):
            file = self._static(STATIC, path.removeprefix("/_kdeps/static/"), None)
        elif path.startswith("/_kdeps/swagger/"):
            file = self._static(_swagger_dir(), path.removeprefix("/_kdeps/swagger/"), _SWAGGER_FILES)
        if file is None:
            return _error(404, f"no route for {path}")
        return 200, file.body, file.headers

    def allowed(self, headers: dict[str, str], ip: str) -> bool:
        """With a token configured: everyone (the data needs the token). Without: loopback only."""
        return self.token is not None or (is_loopback(ip) and _loopback_host(headers.get("host", "")))

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self.token is None:
            return True
        scheme, _, given = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token)

    def _static(self, root: Path | None, name: str, allowed: tuple[str, ...] | None) -> _File | None:
        if root is None or "/" in name or name.startswith("."):
            return None
        if allowed is not None and name not in allowed:
            return None
        path = root / name
        if path.suffix not in _TYPES or not path.is_file():
            return None
        return self._file(path, None)

    def _file(self, path: Path, csp: str | None) -> _File:
        key = str(path)
        cached = self._files.get(key)
        if cached is None:
            headers = {**_COMMON, "content-type": _TYPES[path.suffix]}
            if csp:
                headers.update({"content-security-policy": csp, "x-frame-options": "DENY"})
            cached = self._files[key] = _File(path.read_bytes(), headers)
        return cached

    # -- the run's trace ----------------------------------------------------------------------------
    def wants_trace(self, headers: dict[str, str], ip: str) -> bool:
        """The page asks for the trace with `X-Kdeps-Trace: 1`; others never get it."""
        return headers.get(TRACE_HEADER) == "1" and self.allowed(headers, ip) and self._authorised(headers)

    @staticmethod
    def trace(response: Any) -> dict[str, Any]:
        """Each resource's status, duration, backend/model, tokens and finish reason; the run's totals."""
        return {"resources": getattr(response, "trace", None) or
                [{"resource": r} for r in getattr(response, "resources", None) or ()],
                "usage": getattr(response, "usage", None)}

    def trace_header(self, response: Any) -> dict[str, str]:
        return {TRACE_HEADER: json.dumps(self.trace(response), separators=(",", ":"), default=str)}


def _swagger_dir() -> Path | None:
    try:
        from openapi_ui_bundles import swagger_ui
    except ImportError:
        return None
    return Path(swagger_ui.static_path)


def _loopback_host(host: str) -> bool:
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    return name.endswith(".localhost") or is_loopback(name)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    body = _json(HTTPError(status, message).envelope())
    return status, body, {**_COMMON, **(headers or {}), "content-type": "application/json"}
