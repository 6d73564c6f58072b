"""The one rule that decides whether a Docker image gets Ollama.

Ollama is installed when `installOllama` is not false and at least one of: a chat resource
uses the ollama backend (or names no backend, ollama being the default), `agentSettings.models`
is non-empty, or `installOllama: true`. `installOllama: false` wins over everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kdeps.llm.catalog import BY_NAME, DEFAULT_BACKEND, Runs, names_running

if TYPE_CHECKING:
    from kdeps.spec.loader import Project


def _running(runs: Runs) -> frozenset[str]:
    """Backend names whose model runs there; '' (a chat block without `backend`) when the default does."""
    default = {""} if BY_NAME[DEFAULT_BACKEND].runs == runs else set()
    return names_running(runs) | default


OLLAMA_BACKENDS = _running("ollama")
"""Backends the image's Ollama serves."""
IN_PROCESS_BACKENDS = _running("in_process")
"""Backends that need llama.cpp built into the image."""
OLLAMA_DEFAULT_PORT = urlsplit(BY_NAME["ollama"].default_url).port or 80  # no port: HTTP's
"""Where the image's Ollama listens unless `ollamaUrl` names another local port."""


@dataclass(frozen=True)
class OllamaDecision:
    """Whether Ollama goes into the image, and a sentence saying why."""

    needed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.needed


def chat_backends(project: Project) -> dict[str, set[str]]:
    """Map each resource id with a chat action to the backends it may call: its own (lower case;
    '' when absent, meaning ollama) and those its fallbacks name."""
    backends: dict[str, set[str]] = {}
    for rid, resource in project.resources.items():
        names: set[str] = set()
        for chat in resource.chats():
            names.add((chat.backend or "").strip().lower())
            # A fallback without a backend keeps the primary one, so only named ones add to the set.
            names |= {str(fb.backend).strip().lower() for fb in chat.fallback if fb.backend}
        if not names:
            continue
        backends[rid] = names
    return backends


def needs_ollama(project: Project) -> OllamaDecision:
    """Apply the seed's rule to a loaded project (pure: reads the project, touches nothing)."""
    settings = project.workflow.settings.agent_settings
    install = settings.install_ollama
    models = list(settings.models)
    if install is False:
        return OllamaDecision(False, "installOllama: false")
    users = sorted(rid for rid, names in chat_backends(project).items() if names & OLLAMA_BACKENDS)
    if users:
        return OllamaDecision(True, "chat resource(s) " + ", ".join(users) + " use the ollama backend "
                                    "(named or by default)")
    if models:
        return OllamaDecision(True, "agentSettings.models lists " + ", ".join(models))
    if install is True:
        return OllamaDecision(True, "installOllama: true")
    return OllamaDecision(False, "no chat resource uses Ollama and no models are listed")
