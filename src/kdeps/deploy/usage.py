"""Which backends and models an agent's chat resources use, per resource, as far as YAML says
before a request (for `kdeps doctor`; the build reads `kdeps.deploy.k8s.chat_usage`)."""

from __future__ import annotations

from typing import Any

from kdeps.spec.backends import DEFAULT_BACKEND


def static_text(value: Any, env: dict[str, str]) -> str:
    """A block value as far as it can be known before a request: `{{ env('X') }}` resolved from
    `env`; other templates stay as written (callers skip those)."""
    text = str(value or "").strip()
    if text.startswith("{{") and "env(" in text:
        name = text.split("env(", 1)[1].split(")", 1)[0].strip("'\" ")
        return env.get(name, "")
    return text


def chat_usage(project: Any, env: dict[str, str] | None = None) -> dict[str, dict[str, set[str]]]:
    """backend → {model → ids of the resources using it}, for every chat block and fallback."""
    env = env or {}
    default = (env.get("KDEPS_DEFAULT_BACKEND") or DEFAULT_BACKEND).strip().lower()
    default = {"file": "gguf", "llamafile": "gguf"}.get(default, default)
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
