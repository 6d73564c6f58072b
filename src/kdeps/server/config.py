"""Server settings read from the loaded project, with KDeps' defaults filled in.

Reading goes through `_pick`, which accepts snake_case attributes, camelCase attributes and dict keys,
so the server only depends on the names documented for workflow.yaml."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from kdeps.errors import KdepsError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
SESSION_URL_ENV = "KDEPS_SESSION_URL"  # replaces a redis session's url (kdeps export k8s sets it)
DEFAULT_MAX_BODY = 10 * 1024 * 1024
DEFAULT_MAX_CONCURRENCY = 256
DEFAULT_SESSION_TTL = 30 * 60.0
DEFAULT_SESSION_CLEANUP = 5 * 60.0
DEFAULT_CORS_MAX_AGE = 12 * 3600

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZES = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _pick(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    for key in (name, _camel(name)):
        value = obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
        if value is not None:
            return value
    return default


def seconds(value: Any, default: float) -> float:
    """A duration as seconds: numbers are seconds; strings like '30s', '5m', '1h30m', '7d', '500ms'."""
    if value is None or value == "":
        return default
    if isinstance(value, int | float):
        return float(value)
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    text = str(value).strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        try:
            return float(text)
        except ValueError:
            raise KdepsError(f"invalid duration '{value}' (use e.g. 30s, 5m, 1h, 7d)") from None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def byte_size(value: Any, default: int) -> int:
    """A size in bytes: an int, or a string such as '10MB', '512k'."""
    if value is None or value == "":
        return default
    if isinstance(value, int | float):
        return int(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not match or match.group(2).lower() not in _SIZES:
        raise KdepsError(f"invalid size '{value}' (use e.g. 10MB, 512KB or a number of bytes)")
    return int(float(match.group(1)) * _SIZES[match.group(2).lower()])


@dataclass(slots=True)
class RouteSpec:
    path: str
    methods: list[str]
    public: bool = False  # served without the API token (see server.auth)


@dataclass(slots=True)
class CorsSettings:
    enabled: bool = False
    allow_origins: list[str] = field(default_factory=list)
    allow_methods: list[str] | None = None  # None: the matched route's methods
    allow_headers: list[str] = field(default_factory=list)
    expose_headers: list[str] = field(default_factory=list)
    allow_credentials: bool = True
    max_age: int = DEFAULT_CORS_MAX_AGE


@dataclass(slots=True)
class SessionSettings:
    type: str = "sqlite"
    path: str | None = None
    url: str | None = None
    ttl: float = DEFAULT_SESSION_TTL
    cleanup_interval: float = DEFAULT_SESSION_CLEANUP


@dataclass(slots=True)
class ServerSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    routes: list[RouteSpec] = field(default_factory=list)
    cors: CorsSettings = field(default_factory=CorsSettings)
    trusted_proxies: list[str] = field(default_factory=list)
    auth_token: str | None = None  # raw; may be a template, see resolve_auth_token
    max_body_size: int = DEFAULT_MAX_BODY
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENCY
    session: SessionSettings = field(default_factory=SessionSettings)
    ui: bool = False  # apiServer.ui: the playground, /docs and /openapi.json (kdeps run --ui)


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def settings_from_project(project: Any) -> ServerSettings:
    """Collect apiServer and session settings from a loaded project (or a bare workflow)."""
    workflow = _pick(project, "workflow", project)
    settings = _pick(workflow, "settings")
    api = _pick(settings, "api_server")
    routes = [
        RouteSpec(str(_pick(r, "path", "/")), [m.upper() for m in _str_list(_pick(r, "methods"))] or ["GET"],
                  bool(_pick(r, "public", False)))
        for r in (_pick(api, "routes") or [])
    ]
    cors_raw = _pick(api, "cors")
    methods = _pick(cors_raw, "allow_methods")
    cors = CorsSettings(
        enabled=bool(_pick(cors_raw, "enable_cors", False)),
        allow_origins=_str_list(_pick(cors_raw, "allow_origins")),
        allow_methods=[m.upper() for m in _str_list(methods)] if methods else None,
        allow_headers=_str_list(_pick(cors_raw, "allow_headers")),
        expose_headers=_str_list(_pick(cors_raw, "expose_headers")),
        allow_credentials=bool(_pick(cors_raw, "allow_credentials", True)),
        max_age=int(seconds(_pick(cors_raw, "max_age"), DEFAULT_CORS_MAX_AGE)),
    )
    sess = _pick(settings, "session")
    if _pick(sess, "enabled", True) is False:
        sess = None  # `enabled: false`: as if the block were absent
    kind = str(_pick(sess, "type", "sqlite")).lower()
    # Set by `kdeps export k8s` when the workflow's Redis is on localhost: the in-cluster one instead.
    env_url = os.environ.get(SESSION_URL_ENV) if kind == "redis" else None
    session = SessionSettings(
        type=kind,
        path=_pick(sess, "path"),
        url=env_url or _pick(sess, "url"),
        ttl=seconds(_pick(sess, "ttl"), DEFAULT_SESSION_TTL),
        cleanup_interval=seconds(_pick(sess, "cleanup_interval"), DEFAULT_SESSION_CLEANUP),
    )
    token = _pick(api, "auth_token")
    return ServerSettings(
        host=str(_pick(api, "host_ip", DEFAULT_HOST)),
        port=int(_pick(api, "port_num", DEFAULT_PORT)),
        routes=routes,
        cors=cors,
        trusted_proxies=_str_list(_pick(api, "trusted_proxies")),
        auth_token=str(token) if token not in (None, "") else None,
        max_body_size=byte_size(_pick(api, "max_body_size"), DEFAULT_MAX_BODY),
        max_concurrent_requests=int(_pick(api, "max_concurrent_requests", DEFAULT_MAX_CONCURRENCY)),
        session=session,
        ui=bool(_pick(api, "ui", False)),
    )


_ENV_TEMPLATE = re.compile(r"""\{\{\s*get\(\s*['"]([^'"]+)['"]\s*,\s*['"]env['"]\s*\)\s*\}\}""")


def resolve_auth_token(raw: str | None, env: dict[str, str] | None = None) -> str | None:
    """The bearer token the API requires, or None. `{{ get('NAME','env') }}` reads the environment
    (then `agentSettings.env` passed as `env`); a referenced variable that is unset is an error, so a
    typo never leaves the API open."""
    if raw is None:
        return None
    if "{{" not in raw:
        return raw

    def lookup(name: str) -> str:
        value = os.environ.get(name) or (env or {}).get(name)
        if not value:
            raise KdepsError(f"apiServer.authToken reads the environment variable {name}, which is not set")
        return str(value)

    token = _ENV_TEMPLATE.sub(lambda m: lookup(m.group(1)), raw)
    if "{{" in token:
        try:
            from kdeps.expr import Env, render  # type: ignore[attr-defined]
        except ImportError:
            raise KdepsError("apiServer.authToken: only {{ get('NAME','env') }} templates are supported"
                             ) from None
        token = str(render(token, Env(functions={"get": lambda k, src=None: lookup(k)})))
    if not token:
        raise KdepsError("apiServer.authToken is empty")
    return token
