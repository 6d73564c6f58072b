"""docker-compose.yml for a `BuildPlan` (built as data, dumped as YAML)."""

from __future__ import annotations

from typing import Any

import yaml

from kdeps.deploy.dockerfile import HEADER_MARK, HOME
from kdeps.deploy.plan import BuildPlan


def compose_data(plan: BuildPlan) -> dict[str, Any]:
    """The compose document as plain data: one service for the agent, an `ollama` volume when used."""
    service: dict[str, Any] = {"build": {"context": "."}, "image": plan.tag}
    if plan.ports:
        service["ports"] = [f"{p}:{p}" for p in plan.ports]
    if plan.runtime_env:
        # Secrets come from the shell or an .env file beside this compose file, never from the image.
        service["environment"] = {k: f"${{{k}:-}}" for k in plan.runtime_env}
    volumes: dict[str, Any] = {}
    if plan.ollama and plan.ollama_local:
        service["volumes"] = [f"ollama:{HOME}/.ollama"]
        volumes["ollama"] = {}
    service["restart"] = "unless-stopped"
    if plan.gpu == "cuda":
        service["deploy"] = {"resources": {"reservations": {"devices": [
            {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}}}
    elif plan.gpu == "rocm":
        service["devices"] = ["/dev/kfd:/dev/kfd", "/dev/dri:/dev/dri"]
        service["group_add"] = ["video"]
    elif plan.gpu in ("intel", "vulkan"):
        service["devices"] = ["/dev/dri:/dev/dri"]
    doc: dict[str, Any] = {"services": {_service_name(plan.name): service}}
    if volumes:
        doc["volumes"] = volumes
    return doc


def _service_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower()).strip("-_")
    return cleaned or "agent"


def render_compose(plan: BuildPlan) -> str:
    """docker-compose.yml text."""
    head = f"{HEADER_MARK} {plan.kdeps_version} for agent {plan.name} {plan.version}.\n"
    return head + yaml.safe_dump(compose_data(plan), sort_keys=False, default_flow_style=False)
