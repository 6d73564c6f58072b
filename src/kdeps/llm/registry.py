"""Backend names → backend instances, imported on first use.

The backends and their facts are declared in `kdeps.llm.catalog`; the class in each declared module
whose `declaration` is that row serves the name (one module may serve several, `openai_compat.py`).
Importing this module imports no backend: each backend module is loaded the first time its name is
asked for.

HTTP backends subclass `kdeps.llm.backends.base.Backend`. In-process backends (the embedded
llama.cpp `gguf`) implement `LocalBackend` instead; the client calls them directly, without the
HTTP transport.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

from kdeps.llm.catalog import BY_NAME, Declaration, default_backend
from kdeps.llm.errors import AuthError, BadRequestError
from kdeps.llm.types import ChatRequest, ChatResult, Endpoint, StreamDelta


@runtime_checkable
class LocalBackend(Protocol):
    """A backend that runs in this process (no HTTP). Deadlines and retries still apply."""

    name: ClassVar[str]
    env_var: ClassVar[str | None]

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> ChatResult: ...

    def stream(self, request: ChatRequest, endpoint: Endpoint) -> AsyncIterator[StreamDelta]: ...


BACKENDS: dict[str, Declaration] = BY_NAME
"""Every backend kdeps ships (`kdeps.llm.catalog`), in the seed's order."""

_PKG = "kdeps.llm.backends."

_instances: dict[str, Any] = {}
_extra_info: dict[str, Declaration] = {}
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
            _extra_info[name] = Declaration(name, "", env_var, default_url, "response_format")


def unregister_backend(name: str) -> None:
    """Undo `register_backend` (built-in backends go back to their own module)."""
    with _lock:
        _factories.pop(name, None)
        _instances.pop(name, None)
        _extra_info.pop(name, None)



def backend_info(name: str) -> Declaration:
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


def resolve_endpoint(name: str | None, *, base_url: str | None, api_key: str | None,
                     env: Callable[[str], str | None], ollama_url: str | None = None,
                     workdir: str = "") -> Endpoint:
    """Where and how to call a backend, from a chat block's rendered values and the agent's env.

    No name: `KDEPS_DEFAULT_BACKEND`, else the default backend. URL: the block's `baseUrl`, else (an
    Ollama backend) `agentSettings.ollamaUrl` or `OLLAMA_HOST`, else the declared default; an
    in-process backend gets `workdir`, where relative model paths resolve. Key: the block's `apiKey`,
    else the declared variable. UnknownBackendError or AuthError (no key) before any call."""
    if not name:
        name = default_backend(env("KDEPS_DEFAULT_BACKEND"))
    info = backend_info(name.strip().lower())
    if info.runs == "in_process":
        url = workdir
    else:
        if not base_url and info.runs == "ollama":
            host = env("OLLAMA_HOST")  # as the ollama CLI reads it
            base_url = ollama_url or (host if not host or "://" in host else f"http://{host}")
        url = (base_url or info.default_url).strip().rstrip("/")
    key = api_key.strip() if api_key and api_key.strip() else None
    if key is None and info.env_var:
        key = (env(info.env_var) or "").strip() or None
    endpoint = Endpoint(backend=info.name, base_url=url, api_key=key)
    check_api_key(endpoint)
    return endpoint


def check_supported(request: ChatRequest, endpoint: Endpoint) -> None:
    """Raise BadRequestError (before any call) when the request needs what the backend declares it
    lacks: tools or images."""
    info = backend_info(endpoint.backend)
    if request.tools and not info.tools:
        raise BadRequestError(info.name, f"the {info.name} backend does not support tools; use a backend "
                                         "that does (see the backend table) for function calling")
    if not info.images and any(m.images for m in request.messages):
        raise BadRequestError(info.name, f"the {info.name} backend does not accept images; remove files: "
                                         "or use a vision-capable backend (e.g. openai, anthropic, google, "
                                         "ollama)")


def check_api_key(endpoint: Endpoint) -> None:
    """Raise AuthError (before any network call) when the backend needs a key and has none."""
    env_var = backend_info(endpoint.backend).env_var
    if env_var and not (endpoint.api_key and endpoint.api_key.strip()):
        raise AuthError(endpoint.backend,
                        f"no API key: set the {env_var} environment variable or the resource's apiKey")


def _load(name: str) -> Any:
    info = backend_info(name)
    try:
        module = importlib.import_module(_PKG + info.module)
    except ImportError as exc:
        raise BadRequestError(name, f"backend '{name}' is not available here: {exc}") from None
    for value in vars(module).values():
        declares = inspect.isclass(value) and value.__dict__.get("declaration") is info
        if declares and not inspect.isabstract(value):
            return value()
    raise LookupError(f"{_PKG}{info.module} defines no class declaring backend '{name}'")
