"""Which backends, models and API-key variables an agent's chat resources use, as far as YAML says
before a request. `kdeps doctor`, `kdeps validate`, the Docker build and `kdeps export k8s` read
them from here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from kdeps.llm.catalog import default_backend

if TYPE_CHECKING:
    from kdeps.spec.loader import Project

_ENV_GET = re.compile(r"""^\{\{\s*get\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*,\s*['"]env['"]\s*\)\s*\}\}$""")


def env_ref(value: Any) -> str | None:
    """NAME when `value` is exactly `{{ get('NAME', 'env') }}`."""
    match = _ENV_GET.match(str(value).strip()) if value else None
    return match.group(1) if match else None


def static_text(value: Any, env: dict[str, str]) -> str:
    """A block value as far as it can be known before a request: `{{ get('X', 'env') }}` resolved
    from `env`; other templates stay as written (callers skip those)."""
    text = str(value or "").strip()
    name = env_ref(text)
    return env.get(name, "") if name else text


class ChatCall(NamedTuple):
    """One backend a chat block may call: its own, or one of its fallbacks."""

    resource: str
    backend: str
    model: str
    api_key: Any  # the block's `apiKey` as written (None: the backend's variable)


def chat_calls(project: Project, env: dict[str, str] | None = None) -> Iterator[ChatCall]:
    """Every chat block and fallback of the agent, with the backend, model and key it would use, as
    the chat action resolves them (a fallback without `backend` keeps the primary's, and its key)."""
    env = env or {}
    default = default_backend(env.get("KDEPS_DEFAULT_BACKEND"))
    for aid, plan in project.resources.items():
        for chat in plan.chats():
            primary = (static_text(chat.backend, env) or default).lower()
            model = static_text(chat.model, env)
            yield ChatCall(aid, primary, model, chat.api_key)
            for fb in chat.fallback:
                backend = (static_text(fb.backend, env) or primary).lower()
                key = fb.api_key if fb.backend else (fb.api_key or chat.api_key)
                yield ChatCall(aid, backend, static_text(fb.model, env) or model, key)


def key_variable(call: ChatCall) -> str | None:
    """The environment variable holding the call's API key: the one a `{{ get('X', 'env') }}`
    apiKey names (a literal key needs none), else the backend's declared variable."""
    if call.api_key:
        return env_ref(call.api_key)
    from kdeps.errors import KdepsError
    from kdeps.llm.registry import backend_info

    try:
        return backend_info(call.backend).env_var
    except KdepsError:
        return None


def chat_usage(project: Project, env: dict[str, str] | None = None) -> dict[str, dict[str, set[str]]]:
    """backend → {model → ids of the resources using it}, for every chat block and fallback."""
    uses: dict[str, dict[str, set[str]]] = {}
    for call in chat_calls(project, env):
        uses.setdefault(call.backend, {}).setdefault(call.model, set()).add(call.resource)
    return uses


def key_users(project: Project, env: dict[str, str] | None = None) -> dict[str, dict[str, set[str]]]:
    """API-key variable → backend → ids of the resources that need it."""
    out: dict[str, dict[str, set[str]]] = {}
    for call in chat_calls(project, env):
        var = key_variable(call)
        if var:
            out.setdefault(var, {}).setdefault(call.backend, set()).add(call.resource)
    return out
