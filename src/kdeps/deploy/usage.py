"""Which backends and models an agent's chat resources use, per resource, as far as YAML says
before a request (for `kdeps doctor`; the build reads `kdeps.deploy.k8s.chat_usage`)."""

from __future__ import annotations

from typing import Any

from kdeps.llm.catalog import default_backend


def static_text(value: Any, env: dict[str, str]) -> str:
    """A block value as far as it can be known before a request: `{{ get('X', 'env') }}` resolved
    from `env`; other templates stay as written (callers skip those)."""
    from kdeps.deploy.k8s import _env_ref

    text = str(value or "").strip()
    name = _env_ref(text)
    return env.get(name, "") if name else text


def chat_usage(project: Any, env: dict[str, str] | None = None) -> dict[str, dict[str, set[str]]]:
    """backend → {model → ids of the resources using it}, for every chat block and fallback."""
    env = env or {}
    default = default_backend(env.get("KDEPS_DEFAULT_BACKEND"))
    uses: dict[str, dict[str, set[str]]] = {}
    for aid, plan in project.resources.items():
        for chat in plan.chats():
            backend = (static_text(chat.backend, env) or default).lower()
            uses.setdefault(backend, {}).setdefault(static_text(chat.model, env), set()).add(aid)
            for fb in getattr(chat, "fallback", None) or ():
                name = (static_text(getattr(fb, "backend", None), env) or backend).lower()
                model = static_text(getattr(fb, "model", None), env) or static_text(chat.model, env)
                uses.setdefault(name, {}).setdefault(model, set()).add(aid)
    return uses


def key_users(project: Any, env: dict[str, str] | None = None) -> dict[str, dict[str, set[str]]]:
    """API-key variable → backend → ids of the resources that need it. A block's own `apiKey` wins
    (a `{{ get('X', 'env') }}` template needs X; a literal key needs nothing), as the chat action
    resolves it."""
    from kdeps.deploy.k8s import _env_ref
    from kdeps.errors import KdepsError
    from kdeps.llm.registry import backend_info

    env = env or {}
    default = default_backend(env.get("KDEPS_DEFAULT_BACKEND"))
    out: dict[str, dict[str, set[str]]] = {}

    def add(aid: str, backend: str, api_key: Any) -> None:
        if api_key:
            var = _env_ref(api_key)
        else:
            try:
                var = backend_info(backend).env_var
            except KdepsError:
                var = None
        if var:
            out.setdefault(var, {}).setdefault(backend, set()).add(aid)

    for aid, plan in project.resources.items():
        for chat in plan.chats():
            primary = (static_text(chat.backend, env) or default).lower()
            add(aid, primary, chat.api_key)
            for fb in getattr(chat, "fallback", None) or ():
                backend = (static_text(fb.backend, env) or primary).lower()
                add(aid, backend, fb.api_key if fb.backend else (fb.api_key or chat.api_key))
    return out
