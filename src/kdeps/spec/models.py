"""Pydantic models of workflow.yaml and resource files.

Attributes are snake_case; the YAML keys are their camelCase aliases. Unknown keys are errors.
Templated values (`"{{ get('q') }}"`) and bare expressions are kept as plain strings: rendering
happens when a request runs, not here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from kdeps.spec.backends import BACKENDS
from kdeps.spec.units import next_fire_time, parse_byte_size, parse_duration

API_VERSION = "kdeps.io/v1"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
ACTIONS = ("chat", "http_client", "python", "exec", "api_response")
PRIMARY_ACTIONS = ("chat", "http_client", "python", "exec")

# KDeps features this implementation does not have: a key naming one gets a clear "not supported"
# error instead of "unknown key".
UNSUPPORTED_ACTIONS = (
    "sql", "agent", "component", "scraper", "embedding", "searchLocal", "searchWeb", "telephony",
    "browser", "botReply", "email", "file", "git", "codeIntelligence", "loader", "vectorStore",
    "transcribe", "mcp", "tts", "memory",
)
UNSUPPORTED_SETTINGS = ("llm", "webApp", "letsEncrypt", "certFile", "keyFile", "bot")


# ---------------------------------------------------------------- reusable field types


def _duration(value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from None


def _byte_size(value: Any) -> int:
    try:
        return parse_byte_size(value)
    except ValueError as exc:
        raise PydanticCustomError("byte_size", str(exc)) from None


def _scalar_to_str(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _one_or_many(value: Any) -> Any:
    """Let a single string stand for a one-element list (`requires: other`)."""
    return [value] if isinstance(value, str) else value


def _method(value: Any) -> Any:
    if not isinstance(value, str):  # a number must not pass as its text
        raise PydanticCustomError(
            "http_method",
            "invalid HTTP method {value}; expected one of: {allowed}",
            {"value": value, "allowed": ", ".join(HTTP_METHODS)},
        )
    if isinstance(value, str):
        upper = value.strip().upper()
        if upper not in HTTP_METHODS:
            raise PydanticCustomError(
                "http_method",
                "invalid HTTP method '{value}'; expected one of: {allowed}",
                {"value": value, "allowed": ", ".join(HTTP_METHODS)},
            )
        return upper
    return value


def _backend(value: Any) -> Any:
    if isinstance(value, str):
        name = value.strip().lower()
        if name not in BACKENDS:
            from difflib import get_close_matches

            close = get_close_matches(name, BACKENDS, n=1)
            raise PydanticCustomError(
                "unknown_backend",
                "unknown backend '{value}'; valid backends: {allowed}",
                {"value": value, "allowed": ", ".join(BACKENDS), "suggestion": close[0] if close else None},
            )
        return name
    return value


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": r"^\s*((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d))+\s*$|^\s*\d+(\.\d*)?\s*$",
                },
                {"type": "number", "minimum": 0},
            ],
            "description": "Duration: 30s, 1m30s, 500ms, 24h, or a number of seconds.",
        }
    ),
]
"""Seconds as a float; YAML may say `60s`, `1m30s`, `500ms`, `24h` or a bare number of seconds."""

ByteSize = Annotated[
    int,
    BeforeValidator(_byte_size),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}],
            "description": "Bytes, or a size such as 512KB, 10MB, 1GB.",
        }
    ),
]

ScalarStr = Annotated[
    str,
    BeforeValidator(_scalar_to_str),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
"""A string; YAML numbers and booleans are accepted and kept as their text (`true`, `42`)."""

StrList = Annotated[
    list[ScalarStr],
    BeforeValidator(_one_or_many),
    WithJsonSchema(
        {"anyOf": [{"type": "array", "items": {"type": ["string", "number", "boolean"]}}, {"type": "string"}]}
    ),
]
"""A list of strings; a single string is read as a one-element list."""

Method = Annotated[
    str,
    BeforeValidator(_method),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "enum": list(HTTP_METHODS)},
                {"type": "string", "pattern": "^(" + "|".join(m.lower() for m in HTTP_METHODS) + ")$"},
            ],
            "description": "HTTP method (case-insensitive).",
        }
    ),
]

def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise PydanticCustomError("port", "port must be between 1 and 65535, got {value}", {"value": value})
    return value


Port = Annotated[
    int, AfterValidator(_port), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 65535})
]
"""A TCP port, 1-65535."""

Text = Annotated[str, Strict()]
"""A string that must be written as one: a YAML number or boolean here is a mistake, not text."""

Backend = Annotated[
    str, BeforeValidator(_backend), WithJsonSchema({"type": "string", "enum": list(BACKENDS)})
]


_ALIAS_MAPS: dict[type, dict[str, str]] = {}


def _timeout() -> Any:
    """A `timeoutDuration` field that the current layout spells `timeout`."""
    return Field(
        None,
        validation_alias=AliasChoices("timeoutDuration", "timeout"),
        description="Time limit, e.g. 30s (`timeout` in the current layout).",
    )


def _default(cls: type[BaseModel]) -> Any:
    """Default factory that skips validation (defaults are valid), so no validator is built for it."""
    return cls.model_construct


class SpecModel(BaseModel):
    """Base of every spec model: camelCase keys, unknown keys rejected, `key: null` means "not set"."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        coerce_numbers_to_str=True,
        defer_build=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        # An empty YAML value (`requires:`) means "use the default", except where null is meaningful
        # (fields whose default is None, such as onError.fallback, keep the explicit null).
        if isinstance(data, dict) and None in data.values():
            fields = cls.model_fields
            by_alias = cls._alias_map()
            out = {}
            for key, value in data.items():
                name = by_alias.get(str(key), str(key))
                field = fields.get(name)
                if (
                    value is None
                    and field is not None
                    and not field.is_required()
                    and (field.default is not None or field.default_factory is not None)
                ):
                    continue
                out[key] = value
            return out
        return data

    @classmethod
    def _alias_map(cls) -> dict[str, str]:
        cached = _ALIAS_MAPS.get(cls)
        if cached is None:
            cached = {}
            for n, f in cls.model_fields.items():
                cached[f.alias or n] = n
                if isinstance(f.validation_alias, AliasChoices):
                    cached.update({str(c): n for c in f.validation_alias.choices})
            _ALIAS_MAPS[cls] = cached
        return cached

    @classmethod
    def yaml_keys(cls) -> list[str]:
        """The YAML keys this model accepts (the camelCase aliases)."""
        return list(cls._alias_map())


# ---------------------------------------------------------------- workflow.yaml


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
    cors: Cors = Field(default_factory=_default(Cors))
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
    api_server: ApiServer = Field(default_factory=_default(ApiServer))
    web_server_mode: bool = Field(False, description="Also run the web server.")
    web_server: WebServer | None = None
    agent_settings: AgentSettings = Field(default_factory=_default(AgentSettings))
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

    api_version: Literal["kdeps.io/v1"] = Field("kdeps.io/v1", description="Always kdeps.io/v1.")
    kind: Literal["Workflow"] = "Workflow"
    metadata: WorkflowMetadata
    settings: Settings = Field(default_factory=_default(Settings))
    resources: list[FlatResource] = Field(
        default_factory=list, description="Resources declared inline (the current layout)."
    )
    tests: list[dict[str, Any]] = Field(
        default_factory=list, description="Self-test cases (accepted; run them with your own client)."
    )


# ---------------------------------------------------------------- resources: actions


class ScenarioItem(SpecModel):
    """One earlier message of the conversation."""

    role: Literal["system", "user", "assistant"] = "user"
    prompt: str = ""


class ToolParameter(SpecModel):
    """One argument of a tool, described to the model."""

    type: Literal["string", "number", "integer", "boolean", "object", "array"] = "string"
    description: str = ""
    required: bool = False
    items: dict[str, Any] | None = Field(None, description="JSON Schema of array items.")
    enum: list[Any] | None = Field(None, description="Allowed values.")
    default: Any = Field(None, description="Value used when the model leaves the argument out.")


class Tool(SpecModel):
    """A function the model may call; calling it runs the resource named by `script`."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Function name shown to the model.")
    description: str = ""
    script: str | None = Field(
        None, description="actionId of the resource that runs the tool (default: the tool's name).")
    parameters: dict[str, ToolParameter] = Field(default_factory=dict)
    strict: bool = Field(False, description="Ask the provider to follow the schema strictly.")


class ChatRetry(SpecModel):
    """Retries of a failed LLM call (connection errors, timeouts, 408/409/429/5xx)."""

    max_attempts: int = Field(3, ge=1, description="Total attempts, the first included.")
    initial_delay: Duration = 1.0
    max_delay: Duration = 30.0
    backoff_multiplier: float = Field(2.0, ge=1.0)


class ChatFallback(SpecModel):
    """Another backend/model to try when the primary one fails."""

    backend: Backend | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None


class Chat(SpecModel):
    """Call a language model."""

    backend: Backend | None = Field(None, description="LLM backend; unset means ollama.")
    base_url: str | None = Field(None, description="Override the backend's URL.")
    api_key: str | None = Field(None, description="API key or a template; default: the backend's env var.")
    model: str | None = Field(None, description="Model name, e.g. llama3.2:1b, gpt-4o.")
    prompt: Text | None = Field(None, description="The prompt; may use {{ }} templates.")
    role: Literal["user", "assistant", "system"] = "user"
    scenario: list[ScenarioItem] = Field(default_factory=list, description="Messages sent before the prompt.")
    context_length: Literal[4096, 8192, 16384, 32768, 65536, 131072, 262144] | None = Field(
        None, description="Context window in tokens."
    )
    temperature: float | None = None
    max_tokens: int | None = Field(None, ge=1)
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    json_response: bool = Field(False, description="Ask for a JSON object and parse it.")
    json_response_keys: StrList = Field(default_factory=list, description="Keys the JSON answer must have.")
    strict_json_keys: bool = Field(False, description="Fail (502) when the JSON answer still lacks a key "
                                   "after one repair request, instead of answering with the key null.")
    tools: list[Tool] = Field(default_factory=list)
    files: StrList = Field(default_factory=list, description="Images to attach (paths or templates).")
    retry: ChatRetry | None = None
    timeout_duration: Duration | None = _timeout()
    stream: bool = Field(
        False,
        validation_alias=AliasChoices("stream", "streaming"),
        description="Stream the answer (server-sent events) when this is the target (`streaming` too).",
    )
    fallback: list[ChatFallback] = Field(default_factory=list)
    max_tool_rounds: int = Field(5, ge=1, description="Most model ↔ tool round trips per request.")


class HttpAuth(SpecModel):
    """Authentication of an outgoing HTTP request."""

    type: Literal["bearer", "basic", "api_key", "oauth2"]
    token: str | None = None
    username: str | None = None
    password: str | None = None
    key: str | None = Field(None, description="api_key: the header name, e.g. X-API-Key.")
    value: str | None = Field(None, description="api_key: the header value.")

    @model_validator(mode="after")
    def _check(self) -> HttpAuth:
        need = {
            "bearer": ("token",),
            "oauth2": ("token",),
            "basic": ("username",),
            "api_key": ("key", "value"),
        }[self.type]
        missing = [to_camel(n) for n in need if getattr(self, n) is None]
        if missing:
            raise ValueError(f"{self.type} auth needs {' and '.join(missing)}")
        return self


class HttpRetry(SpecModel):
    """Retries of an outgoing HTTP request."""

    max_attempts: int = Field(3, ge=1, description="Total attempts, the first included.")
    backoff: Duration = Field(1.0, description="First delay; doubles each retry.")
    max_backoff: Duration = 30.0
    retry_on: list[int] = Field(
        default_factory=list, description="Status codes to retry (default 429 and 5xx)."
    )


class HttpCache(SpecModel):
    """Response cache settings (accepted; see the httpClient action for support)."""

    enabled: bool = True
    ttl: Duration = 300.0
    key: str | None = None


class HttpTls(SpecModel):
    """TLS options of an outgoing request."""

    insecure_skip_verify: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None


class HttpClient(SpecModel):
    """Send an HTTP request."""

    method: Method = "GET"
    url: Text
    headers: dict[str, ScalarStr] = Field(default_factory=dict)
    params: dict[str, ScalarStr] = Field(default_factory=dict, description="Query string parameters.")
    data: Any = Field(None, description="Request body; a mapping or list is sent as JSON.")
    auth: HttpAuth | None = None
    retry: HttpRetry | None = None
    timeout_duration: Duration | None = _timeout()
    follow_redirects: bool = True
    proxy: str | None = None
    tls: HttpTls | None = None
    cache: HttpCache | None = None


class Python(SpecModel):
    """Run a Python script; its stdout (parsed as JSON when it is JSON) is the output."""

    script: Text | None = Field(None, description="Inline script; may use {{ }} templates.")
    script_file: str | None = Field(None, description="Path of a .py file, relative to the workflow.")
    args: StrList = Field(default_factory=list)
    env: dict[str, ScalarStr] = Field(default_factory=dict)
    venv_name: str | None = Field(None, description="Virtual environment to run in.")
    timeout_duration: Duration | None = _timeout()

    @model_validator(mode="after")
    def _check(self) -> Python:
        if (self.script is None) == (self.script_file is None):
            raise ValueError("python needs exactly one of script or scriptFile")
        return self


class Exec(SpecModel):
    """Run a shell command; its stdout (parsed as JSON when it is JSON) is the output."""

    command: str
    args: StrList = Field(default_factory=list)
    env: dict[str, ScalarStr] = Field(default_factory=dict)
    working_dir: str | None = None
    timeout_duration: Duration | None = _timeout()


def _success(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        raise PydanticCustomError(
            "success_type", "expected a boolean, got the string '{value}' (write it without quotes)",
            {"value": value})
    if isinstance(value, bool | str):
        return value
    raise PydanticCustomError("success_type", "must be true, false or an expression")


class ApiResponseMeta(SpecModel):
    """Response metadata; headers are sent as HTTP headers."""

    headers: dict[str, ScalarStr] = Field(default_factory=dict)
    model: str | None = None
    backend: str | None = None


class ApiResponse(SpecModel):
    """Shape the JSON answer of the API."""

    success: Annotated[
        bool | str, BeforeValidator(_success), WithJsonSchema({"type": ["boolean", "string"]})
    ] = Field(True, description="true, false, or an expression.")
    response: Any = Field(None, description="Response body; strings may be expressions or templates.")
    meta: ApiResponseMeta | None = None
    headers: dict[str, ScalarStr] = Field(
        default_factory=dict, description="HTTP headers of the answer (the seed-era layout: meta.headers)."
    )
    model: str | None = None
    backend: str | None = None
    status_code: int | None = Field(None, ge=100, le=599, description="HTTP status (default 200).")


# ---------------------------------------------------------------- resources: run block


class PreflightErrorSpec(SpecModel):
    """What to answer when a preflight validation fails."""

    code: int = Field(400, ge=100, le=599)
    message: str = "Validation failed"


class PreflightCheck(SpecModel):
    """Expressions that must all be true before the action runs."""

    validations: StrList = Field(default_factory=list)
    error: PreflightErrorSpec = Field(default_factory=_default(PreflightErrorSpec))


class FieldRule(SpecModel):
    """Rules for one input field."""

    field: str | None = Field(None, description="Field name (only in `rules` lists).")
    type: (
        Literal["string", "number", "integer", "boolean", "object", "array", "email", "url", "uuid", "date"]
        | None
    ) = None
    format: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    min: float | None = None
    max: float | None = None
    enum: list[Any] | None = None
    pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    message: str | None = None


class CustomRule(SpecModel):
    """An expression that must hold, with the message shown when it does not."""

    expr: str
    message: str | None = Field(None, description="Shown when the rule fails; default: the expression.")


class InputValidation(SpecModel):
    """Checks of the request's input fields (answered with 422 when they fail)."""

    required: StrList = Field(default_factory=list)
    properties: dict[str, FieldRule] = Field(default_factory=dict)
    fields: dict[str, FieldRule] = Field(default_factory=dict)
    rules: list[FieldRule] = Field(default_factory=list)
    custom_rules: list[CustomRule] = Field(default_factory=list)


class OnError(SpecModel):
    """What to do when the resource fails."""

    action: Literal["continue", "fail", "retry"] = "fail"
    max_retries: int = Field(3, ge=0)
    retry_delay: Duration = 1.0
    fallback: Any = Field(
        None,
        description="Output used with action: continue (check model_fields_set "
        "to tell `fallback: null` from no fallback).",
    )
    expr: StrList = Field(default_factory=list, description="Expressions run on error; `error` is available.")
    when: StrList = Field(default_factory=list, description="Handle the error only if one of these holds.")


class Run(SpecModel):
    """How and when the resource runs, and its one action."""

    restrict_to_http_methods: list[Method] = Field(default_factory=list)
    restrict_to_routes: StrList = Field(default_factory=list)
    allowed_headers: StrList = Field(default_factory=list)
    allowed_params: StrList = Field(default_factory=list)
    skip_condition: StrList = Field(default_factory=list, description="Skip the resource if any is true.")
    preflight_check: PreflightCheck | None = None
    validation: InputValidation | None = None
    expr_before: StrList = Field(default_factory=list, description="Expressions run before the action.")
    expr: StrList = Field(default_factory=list, description="Expressions run after the action.")
    expr_after: StrList = Field(default_factory=list, description="Expressions run after `expr`.")
    on_error: OnError | None = None
    timeout_duration: Duration | None = None

    chat: Chat | None = None
    http_client: HttpClient | None = None
    python: Python | None = None
    exec: Exec | None = None
    api_response: ApiResponse | None = None


def _items(value: Any) -> Any:
    if value is None or isinstance(value, list | str):
        return value
    raise PydanticCustomError("items_type", "items must be a list or an expression string")


class ResourceMetadata(SpecModel):
    """Identity and dependencies of a resource."""

    action_id: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$",
        description="Unique id; other resources use it in requires and get('id').",
    )
    name: str = ""
    description: str = ""
    category: str = ""
    requires: StrList = Field(default_factory=list, description="actionIds that must run first.")


class Resource(SpecModel):
    """A resource file document: one step of the workflow."""

    api_version: Literal["kdeps.io/v1"] = Field("kdeps.io/v1", description="Always kdeps.io/v1.")
    kind: Literal["Resource"] = "Resource"
    metadata: ResourceMetadata
    items: Annotated[
        list[Any] | str | None, BeforeValidator(_items), WithJsonSchema({"type": ["array", "string"]})
    ] = Field(None, description="Run once per item: a list, or an expression giving a list.")
    run: Run = Field(default_factory=_default(Run))


# ---------------------------------------------------------------- steps and the current (flat) layout


class InlineAction(SpecModel):
    """One inline action of a `before:`/`after:` list: exactly one action block."""

    chat: Chat | None = None
    http_client: HttpClient | None = None
    python: Python | None = None
    exec: Exec | None = None
    api_response: ApiResponse | None = None

    @model_validator(mode="after")
    def _check(self) -> InlineAction:
        present = [to_camel(name) for name in ACTIONS if getattr(self, name) is not None]
        if len(present) != 1:
            found = " and ".join(present) if present else "none"
            raise ValueError(f"an inline step has exactly one action block ({found} given)")
        return self


Step = Annotated[
    Annotated[
        Annotated[str, Tag("expression")] | Annotated[InlineAction, Tag("action")],
        Discriminator(lambda v: "action" if isinstance(v, dict | BaseModel) else "expression"),
    ],
    BeforeValidator(_scalar_to_str),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"$ref": "#/definitions/InlineAction"}]}),
]
"""A `before:`/`after:` entry: an expression, or an inline action."""


class Validations(SpecModel):
    """When the resource runs and what it accepts (the current layout's `validations:`)."""

    methods: list[Method] = Field(default_factory=list, description="Run only for these HTTP methods.")
    routes: StrList = Field(default_factory=list, description="Run only for these routes.")
    headers: StrList = Field(default_factory=list, description="Headers the resource may read.")
    params: StrList = Field(default_factory=list, description="Parameters the resource may read.")
    skip: StrList = Field(default_factory=list, description="Skip the resource if any is true.")
    check: StrList = Field(default_factory=list, description="All must be true, else answer `error`.")
    error: PreflightErrorSpec | None = None
    required: StrList = Field(default_factory=list, description="Input fields that must be present.")
    rules: list[FieldRule] = Field(default_factory=list, description="Rules for input fields.")
    properties: dict[str, FieldRule] = Field(default_factory=dict)
    custom_rules: list[CustomRule] = Field(default_factory=list)
    expr: StrList = Field(default_factory=list, description="Custom rules: expressions that must hold.")


class Loop(SpecModel):
    """Repeat the resource while `while` holds (or `maxIterations` times), `every` apart."""

    while_: str | None = Field(None, alias="while", description="Checked before each iteration.")
    max_iterations: int = Field(1000, ge=1, description="Safety cap on iterations (default 1000).")
    every: Duration | None = Field(None, description="Pause between iterations, e.g. 5s.")
    at: StrList = Field(
        default_factory=list,
        description="Run iteration N at the Nth of these dates/times (RFC 3339, a date, or HH:MM).",
    )

    @model_validator(mode="after")
    def _check(self) -> Loop:
        if self.at and self.every is not None:
            raise ValueError("loop.every and loop.at are mutually exclusive: set only one")
        for entry in self.at:
            next_fire_time(entry)  # an invalid entry is an error before any iteration
        return self


class FlatResource(SpecModel):
    """A resource in the current layout: identity, checks, steps and actions at the top level."""

    api_version: Literal["kdeps.io/v1"] = Field("kdeps.io/v1", description="Always kdeps.io/v1.")
    kind: Literal["Resource"] = "Resource"
    action_id: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$",
        description="Unique id; other resources use it in requires and get('id').",
    )
    name: str = ""
    description: str = ""
    category: str = ""
    requires: StrList = Field(default_factory=list, description="actionIds that must run first.")
    items: Annotated[
        list[Any] | str | None, BeforeValidator(_items), WithJsonSchema({"type": ["array", "string"]})
    ] = Field(None, description="Run once per item: a list, or an expression giving a list.")
    validations: Validations | None = None
    loop: Loop | None = None
    before: list[Step] = Field(default_factory=list, description="Expressions or actions run first.")
    after: list[Step] = Field(default_factory=list, description="Expressions or actions run after.")
    on_error: OnError | None = None
    timeout: Duration | None = Field(None, description="Time limit of the resource's action.")

    chat: Chat | None = None
    http_client: HttpClient | None = None
    python: Python | None = None
    exec: Exec | None = None
    api_response: ApiResponse | None = None

    # The seed-era `run:` vocabulary written at the top level (upstream's own tests do): read as
    # the current layout's equivalents.
    restrict_to_http_methods: list[Method] = Field(default_factory=list, description="= validations.methods")
    restrict_to_routes: StrList = Field(default_factory=list, description="= validations.routes")
    allowed_headers: StrList = Field(default_factory=list, description="= validations.headers")
    allowed_params: StrList = Field(default_factory=list, description="= validations.params")
    skip_condition: StrList = Field(default_factory=list, description="= validations.skip")
    preflight_check: PreflightCheck | None = Field(None, description="= validations.check and error")
    validation: InputValidation | None = Field(None, description="= validations.required/rules")
    expr_before: StrList = Field(default_factory=list, description="Expressions run before the action.")
    expr: StrList = Field(default_factory=list, description="Expressions run after the action.")
    expr_after: StrList = Field(default_factory=list, description="Expressions run after `expr`.")
