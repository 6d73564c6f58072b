"""Backend names → backend instances, imported on first use.

Importing this module imports no backend: each backend module is loaded the first time its name is
asked for. A backend module exposes either a class whose `name` class attribute is the backend name
(instantiated without arguments) or a ready instance with that `name` (at module level or inside a
module-level dict), so one module can serve several names (`openai_compat.py`).

HTTP backends subclass `kdeps.llm.backends.base.Backend`. In-process backends (the embedded
llama.cpp `gguf`) implement `LocalBackend` instead; the client calls them directly, without the
HTTP transport.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from kdeps.llm.errors import AuthError, BadRequestError
from kdeps.llm.types import ChatRequest, ChatResult, Endpoint, StreamDelta


@runtime_checkable
class LocalBackend(Protocol):
    """A backend that runs in this process (no HTTP). Deadlines and retries still apply."""

    name: ClassVar[str]
    env_var: ClassVar[str | None]

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> ChatResult: ...

    def stream(self, request: ChatRequest, endpoint: Endpoint) -> AsyncIterator[StreamDelta]: ...


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What a user sees of a backend: its name, API-key env var and default URL (the seed's table)."""

    name: str
    env_var: str | None
    default_url: str
    module: str


_PKG = "kdeps.llm.backends."

BACKENDS: dict[str, BackendInfo] = {
    info.name: info
    for info in (
        BackendInfo("ollama", None, "http://localhost:11434", _PKG + "ollama"),
        BackendInfo("openai", "OPENAI_API_KEY", "https://api.openai.com", _PKG + "openai_compat"),
        BackendInfo("anthropic", "ANTHROPIC_API_KEY", "https://api.anthropic.com", _PKG + "anthropic"),
        BackendInfo("google", "GOOGLE_API_KEY", "https://generativelanguage.googleapis.com", _PKG + "google"),
        BackendInfo("cohere", "COHERE_API_KEY", "https://api.cohere.ai", _PKG + "cohere"),
        BackendInfo("mistral", "MISTRAL_API_KEY", "https://api.mistral.ai", _PKG + "openai_compat"),
        BackendInfo("together", "TOGETHER_API_KEY", "https://api.together.xyz", _PKG + "openai_compat"),
        BackendInfo("perplexity", "PERPLEXITY_API_KEY", "https://api.perplexity.ai", _PKG + "openai_compat"),
        BackendInfo("groq", "GROQ_API_KEY", "https://api.groq.com", _PKG + "openai_compat"),
        BackendInfo("deepseek", "DEEPSEEK_API_KEY", "https://api.deepseek.com", _PKG + "openai_compat"),
        BackendInfo("gguf", None, "", _PKG + "gguf"),
    )
}
"""Every backend kdeps knows, in the seed's order (the embedded `gguf` last)."""

_instances: dict[str, Any] = {}
_extra_info: dict[str, BackendInfo] = {}
_factories: dict[str, Callable[[], Any]] = {}
_lock = threading.Lock()


class UnknownBackendError(BadRequestError, LookupError):
    """A backend name that is not registered; the message lists the valid names."""

    def __init__(self, name: str) -> None:
        valid = names()
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        super().__init__(name, f"unknown LLM backend '{name}'{hint}; valid backends: {', '.join(valid)}")

    def __str__(self) -> str:
        return self.message


def names() -> list[str]:
    """Valid backend names: the built-in ones, then any registered at run time."""
    return [*BACKENDS, *(n for n in _factories if n not in BACKENDS)]


def register_backend(name: str, factory: Callable[[], Any], *, env_var: str | None = None,
                     default_url: str = "") -> None:
    """Add (or replace) a backend at run time: `factory()` returns a Backend or LocalBackend."""
    with _lock:
        _factories[name] = factory
        _instances.pop(name, None)
        if name not in BACKENDS:
            _extra_info[name] = BackendInfo(name, env_var, default_url, getattr(factory, "__module__", ""))


def unregister_backend(name: str) -> None:
    """Undo `register_backend` (built-in backends go back to their own module)."""
    with _lock:
        _factories.pop(name, None)
        _instances.pop(name, None)
        _extra_info.pop(name, None)



def backend_info(name: str) -> BackendInfo:
    """Name, env var and default URL of a backend; UnknownBackendError if there is no such backend."""
    info = BACKENDS.get(name) or _extra_info.get(name)
    if info is None:
        raise UnknownBackendError(name)
    return info


def get_backend(name: str) -> Any:
    """The backend instance for `name` (a Backend, or a LocalBackend for in-process ones), created once."""
    backend = _instances.get(name)
    if backend is not None:
        return backend
    with _lock:
        backend = _instances.get(name)
        if backend is None:
            factory = _factories.get(name)
            backend = factory() if factory is not None else _load(name)
            _instances[name] = backend
    return backend


def is_local(backend: Any) -> bool:
    """True for in-process backends, which the client calls without the HTTP transport."""
    from kdeps.llm.backends.base import Backend

    return not isinstance(backend, Backend)


def resolve_api_key(backend: str, explicit: str | None, env: Mapping[str, str]) -> str | None:
    """The key to use: the resource's `apiKey` when set, else the backend's env var, else None."""
    if explicit is not None and explicit.strip():
        return explicit.strip()
    env_var = backend_info(backend).env_var
    if env_var:
        value = env.get(env_var)
        if value and value.strip():
            return value.strip()
    return None


def check_api_key(endpoint: Endpoint) -> None:
    """Raise AuthError (before any network call) when the backend needs a key and has none."""
    env_var = backend_info(endpoint.backend).env_var
    if env_var and not (endpoint.api_key and endpoint.api_key.strip()):
        raise AuthError(endpoint.backend,
                        f"no API key: set the {env_var} environment variable or the resource's apiKey")


def _load(name: str) -> Any:
    info = backend_info(name)
    try:
        module = importlib.import_module(info.module)
    except ImportError as exc:
        raise BadRequestError(name, f"backend '{name}' is not available here: {exc}") from exc
    candidates: list[Any] = []
    for value in vars(module).values():
        candidates.extend(value.values() if isinstance(value, Mapping) else [value])
    for value in candidates:
        if getattr(value, "name", None) != name:
            continue
        if inspect.isclass(value):
            if not inspect.isabstract(value):
                return value()
        elif hasattr(value, "build" if _is_http(value) else "complete"):
            return value
    raise LookupError(f"{info.module} defines no backend named '{name}'")


def _is_http(value: Any) -> bool:
    from kdeps.llm.backends.base import Backend

    return isinstance(value, Backend)
