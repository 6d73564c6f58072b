"""The action blocks of a resource: chat, httpClient, python, exec and apiResponse."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from kdeps.spec.fields import Backend, Duration, Method, ScalarStr, SpecModel, StrList, Text, timeout_field

ACTIONS = ("chat", "http_client", "python", "exec", "api_response")
PRIMARY_ACTIONS = ("chat", "http_client", "python", "exec")

# KDeps features this implementation does not have: a key naming one gets a clear "not supported"
# error instead of "unknown key".
UNSUPPORTED_ACTIONS = (
    "sql", "agent", "component", "scraper", "embedding", "searchLocal", "searchWeb", "telephony",
    "browser", "botReply", "email", "file", "git", "codeIntelligence", "loader", "vectorStore",
    "transcribe", "mcp", "tts", "memory",
)


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


class LLMEndpoint(SpecModel):
    """Which model to call, and where: the keys a chat block and its fallbacks share."""

    backend: Backend | None = Field(None, description="LLM backend; unset means ollama.")
    base_url: str | None = Field(None, description="Override the backend's URL.")
    api_key: str | None = Field(None, description="API key or a template; default: the backend's env var.")
    model: str | None = Field(None, description="Model name, e.g. llama3.2:1b, gpt-4o.")


class ChatFallback(LLMEndpoint):
    """Another backend/model to try when the primary one fails."""


class Chat(LLMEndpoint):
    """Call a language model."""

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
    timeout_duration: Duration | None = timeout_field()
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
    timeout_duration: Duration | None = timeout_field()
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
    timeout_duration: Duration | None = timeout_field()

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
    timeout_duration: Duration | None = timeout_field()


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


class ActionBlocks(SpecModel):
    """The action blocks a resource (or an inline step) may hold."""

    chat: Chat | None = None
    http_client: HttpClient | None = None
    python: Python | None = None
    exec: Exec | None = None
    api_response: ApiResponse | None = None
