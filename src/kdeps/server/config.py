"""Server settings read from the loaded project's typed workflow settings, with KDeps' defaults filled in."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kdeps.errors import KdepsError

if TYPE_CHECKING:
    from kdeps.spec.loader import Project

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
SESSION_URL_ENV = "KDEPS_SESSION_URL"  # replaces a redis session's url (kdeps export k8s sets it)
DEFAULT_MAX_BODY = 10 * 1024 * 1024
DEFAULT_MAX_CONCURRENCY = 256
DEFAULT_SESSION_TTL = 30 * 60.0
DEFAULT_SESSION_CLEANUP = 5 * 60.0
DEFAULT_CORS_MAX_AGE = 12 * 3600



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


def settings_from_project(project: Project) -> ServerSettings:
    """apiServer and session settings of a loaded project, with KDeps' defaults filled in."""
    settings = project.workflow.settings
    api = settings.api_server
    routes = [RouteSpec(r.path, [m.upper() for m in r.methods] or ["GET"], r.public) for r in api.routes]
    c = api.cors
    # The seed-era layout switches CORS on with enableCors; the current one by writing the block.
    enabled = c.enable_cors if "enable_cors" in c.model_fields_set else bool(c.allow_origins)
    cors = CorsSettings(
        enabled=enabled,
        allow_origins=list(c.allow_origins),
        allow_methods=[m.upper() for m in c.allow_methods] or None,
        allow_headers=list(c.allow_headers),
        expose_headers=list(c.expose_headers),
        allow_credentials=c.allow_credentials,
        max_age=int(c.max_age),
    )
    sess = settings.session if settings.session is not None and settings.session.enabled else None
    session = SessionSettings()
    if sess is not None:
        # Set by `kdeps export k8s` when the workflow's Redis is on localhost: the in-cluster one instead.
        env_url = os.environ.get(SESSION_URL_ENV) if sess.type == "redis" else None
        session = SessionSettings(type=sess.type, path=sess.path, url=env_url or sess.url, ttl=sess.ttl,
                                  cleanup_interval=sess.cleanup_interval)
    return ServerSettings(
        host=api.host_ip or DEFAULT_HOST,
        port=api.port_num or DEFAULT_PORT,
        routes=routes,
        cors=cors,
        trusted_proxies=list(api.trusted_proxies),
        auth_token=api.auth_token or None,
        max_body_size=api.max_body_size if api.max_body_size is not None else DEFAULT_MAX_BODY,
        max_concurrent_requests=api.max_concurrent_requests or DEFAULT_MAX_CONCURRENCY,
        session=session,
        ui=api.ui,
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
        from kdeps.expr import Env, render

        token = str(render(token, Env(functions={"get": lambda k, src=None: lookup(k)})))
    if not token:
        raise KdepsError("apiServer.authToken is empty")
    return token
