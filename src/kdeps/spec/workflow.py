"""workflow.yaml: the agent's metadata and its server, web server, agent and session settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_core import PydanticCustomError

from kdeps.spec.fields import (
    ApiVersion,
    ByteSize,
    Duration,
    Method,
    Port,
    ScalarStr,
    SpecModel,
    StrList,
    default_of,
)
from kdeps.spec.resources import FlatResource

UNSUPPORTED_SETTINGS = ("llm", "webApp", "letsEncrypt", "certFile", "keyFile", "bot")


class Route(SpecModel):
    """An HTTP route of the API server."""

    path: str = Field(
        pattern=r"^/", description="URL path, e.g. /api/v1/chat; `:name` marks a path parameter."
    )
    methods: list[Method] = Field(
        default_factory=lambda: ["GET", "POST"], description="Allowed HTTP methods."
    )
    public: bool = Field(False, description="Serve without the API auth token.")


class Cors(SpecModel):
    """Cross-origin (CORS) settings of the API server."""

    enable_cors: bool = Field(False, description="Send CORS headers and answer preflight requests.")
    allow_origins: StrList = Field(default_factory=list, description='Allowed origins; "*" allows any.')
    allow_methods: list[Method] = Field(
        default_factory=list, description="Allowed methods (default: the route's)."
    )
    allow_headers: StrList = Field(default_factory=list, description="Request headers a browser may send.")
    expose_headers: StrList = Field(default_factory=list, description="Response headers a browser may read.")
    allow_credentials: bool = Field(True, description="Allow cookies and HTTP authentication.")
    max_age: Duration = Field(
        43200.0, description="How long browsers may cache a preflight answer (default 12h)."
    )


class ApiServer(SpecModel):
    """The HTTP API that serves the workflow."""

    host_ip: str = Field("127.0.0.1", description="Address to bind.")
    port_num: Port = Field(3000, description="Port to listen on.")
    routes: list[Route] = Field(default_factory=list, description="Routes that run the workflow.")
    cors: Cors = Field(default_factory=default_of(Cors))
    trusted_proxies: StrList = Field(
        default_factory=list, description="Proxies (IPs or CIDRs) whose X-Forwarded-For is believed."
    )
    auth_token: str | None = Field(
        None,
        description="If set, requests need `Authorization: Bearer <token>`; "
        "may be a template such as {{ get('TOKEN','env') }}.",
    )
    max_body_size: ByteSize | None = Field(
        None,
        validation_alias=AliasChoices("maxBodySize", "maxBodyBytes"),
        description="Largest accepted request body (bytes or e.g. 10MB).",
    )
    max_concurrent_requests: int | None = Field(
        None,
        ge=1,
        validation_alias=AliasChoices("maxConcurrentRequests", "maxConcurrent"),
        description="Requests handled at once; more are answered 503 with Retry-After.",
    )
    rate_limit: dict[str, Any] | None = Field(None, description="Accepted; not enforced (a warning).")
    ui: bool = Field(False, description="Serve the playground at / and the API docs at /docs "
                     "(as `kdeps run --ui`; on by default with --dev).")


class WebRoute(SpecModel):
    """A web server route: static files or a reverse proxy to a local app."""

    path: str = Field(pattern=r"^/", description="URL path prefix.")
    server_type: Literal["static", "app"] | None = Field(
        None,  # filled in by _check
        description="`static` serves files; `app` proxies to appPort (default: app when appPort is set).",
    )
    public_path: str | None = Field(
        None, description="Directory (relative to the workflow) to serve or run in."
    )
    app_port: Port | None = Field(None, description="Port of the proxied app.")
    command: str | None = Field(None, description="Command that starts the proxied app.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Headers set on proxied requests; values may use {{ env('VAR') }}.",
    )

    @model_validator(mode="after")
    def _check(self) -> WebRoute:
        if self.server_type is None:
            self.server_type = "app" if self.app_port is not None else "static"
        if self.server_type == "static" and not self.public_path:
            raise ValueError("a static route needs publicPath")
        if self.server_type == "app" and self.app_port is None:
            raise ValueError("an app route needs appPort")
        return self


class WebRateLimit(SpecModel):
    """A token bucket per client address."""

    requests_per_minute: int = Field(ge=1, description="Sustained requests per minute.")
    burst: int | None = Field(
        None, ge=1, description="Requests allowed at once (default: the per-minute rate)."
    )


class WebServer(SpecModel):
    """Static files and proxied web apps served next to the API."""

    host_ip: str | None = Field(None, description="Address to bind (unset: the API's).")
    port_num: Port | None = Field(None, description="Port to listen on (unset: share the API's port).")
    routes: list[WebRoute] = Field(default_factory=list)
    trusted_proxies: StrList = Field(default_factory=list)
    max_body_bytes: ByteSize | None = Field(None, description="Largest request body a web route accepts.")
    max_concurrent: int | None = Field(None, ge=1, description="Web requests handled at once; more get 503.")
    rate_limit: WebRateLimit | None = Field(None, description="Requests per client address.")


class AgentSettings(SpecModel):
    """Runtime and image settings of the agent."""

    timezone: str = Field("Etc/UTC", description="Timezone of the container.")
    models: StrList = Field(
        default_factory=list, description="Ollama models to pull (or bake in with offlineMode)."
    )
    ollama_url: str | None = Field(None, description="Ollama base URL (default http://localhost:11434).")
    install_ollama: bool | None = Field(
        None, description="Install Ollama in the image; unset = decide from the resources and models."
    )
    offline_mode: bool = Field(False, description="Bake models into the image.")
    ollama_image_tag: str | None = Field(None, description="Ollama version to install.")
    python_version: str = Field("3.12", description='Python version of the image (quote it: "3.12").')
    python_packages: StrList = Field(default_factory=list, description="pip packages to install.")
    requirements_file: str | None = None
    pyproject_file: str | None = None
    lock_file: str | None = None
    os_packages: StrList = Field(default_factory=list, description="System packages (apt/apk).")
    repositories: StrList = Field(default_factory=list, description="Extra package repositories.")
    base_os: Literal["alpine", "ubuntu", "debian"] | None = Field(
        None, alias="baseOS", description="Base OS of the image."
    )
    env: dict[str, ScalarStr] = Field(default_factory=dict, description="Environment variables of the agent.")
    args: dict[str, ScalarStr] = Field(default_factory=dict, description="Docker build arguments.")
    packages: StrList = Field(default_factory=list, description="Extra packages of the image.")
    replicas: int | None = Field(None, ge=1, description="Kubernetes replicas.")
    resources: dict[str, Any] | None = Field(None, description="Kubernetes resource limits/requests.")
    network_policy: bool = Field(False, description="Kubernetes NetworkPolicy.")
    versions: dict[str, ScalarStr] = Field(default_factory=dict, description="Tool versions for images.")


class SessionStorage(SpecModel):
    """The seed-era nesting of `session.type`/`session.path`."""

    type: Literal["sqlite", "memory", "redis"] = Field(
        "sqlite", description="Store: sqlite, memory or redis."
    )
    path: str | None = Field(None, description="SQLite file.")


class Session(SpecModel):
    """Per-client session storage (get/set with the 'session' scope)."""

    enabled: bool = Field(True, description="false: the block is ignored (the default store is used).")
    storage: SessionStorage | None = Field(None, description="Seed-era spelling of type/path.")
    type: Literal["sqlite", "memory", "redis"] = Field(
        "sqlite", description="Store: sqlite, memory or redis."
    )
    path: str | None = Field(None, description="SQLite file (default .kdeps/sessions.db).")
    url: str | None = Field(None, description="Redis URL, e.g. redis://localhost:6379/0.")
    ttl: Duration = Field(1800.0, description="Session lifetime (default 30m).")
    cleanup_interval: Duration = Field(
        300.0, description="How often expired sessions are removed (default 5m)."
    )

    @model_validator(mode="after")
    def _check(self) -> Session:
        if self.storage is not None:  # the top-level keys win when both are written
            if "type" not in self.model_fields_set:
                self.type = self.storage.type
            if "path" not in self.model_fields_set:
                self.path = self.storage.path
        if self.type == "redis" and not self.url:
            raise ValueError("a redis session needs url (e.g. redis://localhost:6379/0)")
        return self


class InputSettings(SpecModel):
    """Where requests come from; this implementation serves the HTTP API (`api`) only."""

    sources: StrList = Field(default_factory=lambda: ["api"], description="Input sources: api.")

    @model_validator(mode="before")
    @classmethod
    def _only_api(cls, data: Any) -> Any:
        if isinstance(data, dict):
            sources = data.get("sources")
            sources = [sources] if isinstance(sources, str) else sources
            other = [s for s in sources or [] if str(s).lower() not in ("api", "http")]
            if other:
                raise PydanticCustomError(
                    "unsupported", "input source '{name}' is not supported by this implementation "
                    "(it serves the HTTP API: sources: [api])", {"name": other[0]})
            extra = [k for k in data if k != "sources"]
            if extra:
                raise PydanticCustomError(
                    "unsupported", "settings.input.{name} is not supported by this implementation",
                    {"name": extra[0]})
        return data


class Settings(SpecModel):
    """Server, agent and session settings."""

    api_server_mode: bool = Field(False, description="Serve the workflow over HTTP.")
    api_server: ApiServer = Field(default_factory=default_of(ApiServer))
    web_server_mode: bool = Field(False, description="Also run the web server.")
    web_server: WebServer | None = None
    agent_settings: AgentSettings = Field(default_factory=default_of(AgentSettings))
    session: Session | None = Field(None, description="Session storage; unset = default store.")
    sql_connections: dict[str, Any] = Field(
        default_factory=dict, description="Named SQL connections (accepted, not used by kdeps)."
    )
    openai_compat: bool = Field(
        False, description="Also serve an OpenAI-compatible POST /v1/chat/completions."
    )
    input: InputSettings | None = None


class WorkflowMetadata(SpecModel):
    """Name and entry point of the workflow."""

    name: ScalarStr = Field(description="Agent name.")
    description: str = ""
    version: ScalarStr = Field("1.0.0", description='Agent version (quote it: "1.0.0").')
    target_action_id: str = Field(description="actionId of the resource whose output answers each request.")
    workflows: StrList = Field(
        default_factory=list, description="Imported workflows (accepted, not resolved)."
    )


class Workflow(SpecModel):
    """workflow.yaml: metadata and settings of an agent."""

    api_version: ApiVersion = "kdeps.io/v1"
    kind: Literal["Workflow"] = "Workflow"
    metadata: WorkflowMetadata
    settings: Settings = Field(default_factory=default_of(Settings))
    resources: list[FlatResource] = Field(
        default_factory=list, description="Resources declared inline (the current layout)."
    )
    tests: list[dict[str, Any]] = Field(
        default_factory=list, description="Self-test cases (accepted; run them with your own client)."
    )
