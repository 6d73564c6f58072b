"""Shared helpers for the deploy tests (no tests here): write small agents, read Dockerfiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parents[1] / "data" / "deploy"
NO_BACKEND = object()   # a chat resource that names no backend


def make_agent(root: Path, backends: list[Any] | None = None, agent_settings: dict[str, Any] | None = None,
               settings: dict[str, Any] | None = None, name: str = "demo", version: str = "1.2.3",
               fallback: str | None = None) -> Path:
    """An agent folder with one chat resource per entry of `backends` and an apiResponse target."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "resources").mkdir(exist_ok=True)
    chats = []
    for i, backend in enumerate(backends or []):
        chat: dict[str, Any] = {"model": "some-model", "prompt": "{{ get('q') }}"}
        if backend is not NO_BACKEND:
            chat["backend"] = backend
        if fallback and i == 0:
            chat["fallback"] = [{"backend": fallback, "model": "other"}]
        rid = f"chat{i}"
        chats.append(rid)
        doc = {"apiVersion": "kdeps.io/v1", "kind": "Resource", "metadata": {"actionId": rid},
               "run": {"chat": chat}}
        (root / "resources" / f"{rid}.yaml").write_text(yaml.safe_dump(doc))
    response = {"apiVersion": "kdeps.io/v1", "kind": "Resource",
                "metadata": {"actionId": "response", "requires": chats},
                "run": {"apiResponse": {"success": True, "response": {"ok": True}}}}
    (root / "resources" / "response.yaml").write_text(yaml.safe_dump(response))
    wf_settings: dict[str, Any] = {"apiServerMode": True,
                                   "apiServer": {"routes": [{"path": "/api/v1/chat", "methods": ["POST"]}]}}
    wf_settings.update(settings or {})
    if agent_settings is not None:
        wf_settings["agentSettings"] = agent_settings
    workflow = {"apiVersion": "kdeps.io/v1", "kind": "Workflow",
                "metadata": {"name": name, "version": version, "targetActionId": "response"},
                "settings": wf_settings}
    (root / "workflow.yaml").write_text(yaml.safe_dump(workflow, sort_keys=False))
    return root


def stages(dockerfile: str) -> dict[str, list[tuple[str, str]]]:
    """Dockerfile instructions grouped by stage name (from `FROM image AS name`), parsed with
    dockerfile-parse; comments left out."""
    import io

    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.encode()))
    out: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for item in parser.structure:
        if item["instruction"] == "COMMENT":
            continue
        if item["instruction"] == "FROM":
            words = item["value"].split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else f"stage{len(out)}"
            current = out.setdefault(name, [])
        assert current is not None, f"instruction before FROM: {item}"
        current.append((item["instruction"], item["value"]))
    return out


def values(stage: list[tuple[str, str]], instruction: str) -> list[str]:
    return [v for i, v in stage if i == instruction]
