"""API authentication: which bearer token guards the workflow routes, and when one is required.

One token, from the first of: `apiServer.authToken` in workflow.yaml (may read the environment with
`{{ get('NAME','env') }}`), the `KDEPS_API_AUTH_TOKEN` variable, `api_auth_token` in the user's
config file (`~/.kdeps/config.yaml`; `KDEPS_CONFIG_PATH` or `KDEPS_CONFIG` name another). With a
token, every workflow route needs `Authorization: Bearer <token>` (or `X-Api-Key: <token>`) except
the probes and routes marked `public: true`; a public route still refuses a wrong token. Without
one the API is open, which `kdeps run` allows only on a loopback address (`require_token`).
API responses carry KDeps' security headers, including a strict Content-Security-Policy."""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path

import yaml

from kdeps.addresses import is_loopback
from kdeps.errors import KdepsError
from kdeps.server.config import RouteSpec, resolve_auth_token
from kdeps.server.routing import Router

TOKEN_ENV = "KDEPS_API_AUTH_TOKEN"
CONFIG_KEY = "api_auth_token"
CONFIG_HINT = "~/.kdeps/config.yaml"
UNAUTHORIZED = "authentication required: send Authorization: Bearer <token>"
CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
# Sent on every API response unless the response sets the header itself (an apiResponse serving
# HTML may need its own Content-Security-Policy).
API_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"content-security-policy", CSP.encode()),
)

log = logging.getLogger("kdeps.server")



class AuthRequired(KdepsError):
    """The API would listen beyond this machine with no token."""


def config_file() -> Path:
    """The user's kdeps config file."""
    named = os.environ.get("KDEPS_CONFIG_PATH") or os.environ.get("KDEPS_CONFIG")
    return Path(named) if named else Path.home() / ".kdeps" / "config.yaml"


def _config_token() -> str | None:
    path = config_file()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None
    value = data.get(CONFIG_KEY) if isinstance(data, dict) else None
    return (str(value).strip() or None) if value is not None else None


def resolve_token(auth_token: str | None, agent_env: dict[str, str] | None = None) -> str | None:
    """The API's token (see the module doc), or None when none is configured anywhere."""
    if auth_token:
        return resolve_auth_token(auth_token, agent_env)
    return (os.environ.get(TOKEN_ENV) or "").strip() or _config_token()


def require_token(has_token: bool, host: str) -> None:
    """Refuse to serve an open API on an address other machines can reach."""
    if not has_token and not is_loopback(host):
        raise AuthRequired(
            f"the API would listen on {host}, reachable from other machines, without a token: set "
            f"{TOKEN_ENV} (or {CONFIG_KEY} in {CONFIG_HINT}); clients then send "
            f"'Authorization: Bearer <token>'. To serve without a token, listen on 127.0.0.1 "
            f"(--host 127.0.0.1)")


def banner_line(has_token: bool) -> str:
    """What the startup banner says about auth (never the token)."""
    if not has_token:
        return f"  API auth: off (loopback only; set {TOKEN_ENV} to require a bearer token)"
    return "  API auth: bearer token required (except /health, /ready and public routes)"


class ApiAuth:
    """Checks a request's credentials against the token; `None` token: everything passes."""

    def __init__(self, token: str | None, routes: list[RouteSpec]) -> None:
        self.token = token.encode() if token else None
        public = [r for r in routes if getattr(r, "public", False)]
        self.public = Router(public) if public else None

    @property
    def enabled(self) -> bool:
        return self.token is not None

    def presented(self, headers: dict[str, str]) -> str:
        """The credential the request carries: a bearer token, else X-Api-Key, else ''."""
        scheme, _, value = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return headers.get("x-api-key", "").strip()

    def valid(self, presented: str) -> bool:
        # compare_digest takes time independent of where the bytes differ
        return self.token is not None and hmac.compare_digest(presented.encode(), self.token)

    def allows(self, path: str, headers: dict[str, str]) -> bool:
        """Whether a request for `path` with `headers` may run the workflow."""
        if self.token is None:
            return True
        presented = self.presented(headers)
        if self.public is not None and self.public.path_methods(path):
            return not presented or self.valid(presented)  # a wrong token is refused even here
        return bool(presented) and self.valid(presented)
