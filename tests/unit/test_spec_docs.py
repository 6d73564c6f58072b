"""Every YAML snippet of the LLM backends reference, the quickstart and the workflow docs validates.

Snippets live in tests/data/spec/docs/<page>/. A snippet that is only a `run:` block is given
`metadata: {actionId: <file stem>}`; a `settings:`/`metadata:` fragment of workflow.yaml is completed
with the keys a workflow must have; a stub resource answers the workflow's targetActionId.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kdeps.errors import SpecErrors
from kdeps.spec import load_project

DOCS = Path(__file__).resolve().parents[1] / "data" / "spec" / "docs"
SNIPPETS = sorted(p for p in DOCS.glob("*/*.yaml"))


def _agent_from_snippet(snippet: Path, root: Path) -> int:
    """Write an agent around `snippet` into `root`; return how many resources it should have."""
    text = snippet.read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    (root / "resources").mkdir()
    first = docs[0]
    if (
        first.get("kind") == "Workflow"
        or "settings" in first
        or "targetActionId" in first.get("metadata", {})
    ):
        meta = first.get("metadata", {})
        target = meta.get("targetActionId", "stub")
        header = "apiVersion: kdeps.io/v1\nkind: Workflow\n"
        if "metadata" not in first:
            header += f"metadata:\n  name: docs\n  targetActionId: {target}\n"
        (root / "workflow.yaml").write_text(text if first.get("kind") else header + text)
        (root / "resources" / "stub.yaml").write_text(
            f"metadata:\n  actionId: {target}\nrun:\n  apiResponse:\n    response: ok\n"
        )
        return 1
    if "metadata" not in first:
        text = f"metadata:\n  actionId: {snippet.stem}\n" + text
        target = snippet.stem
    else:
        target = first["metadata"]["actionId"]
    (root / "resources" / snippet.name).write_text(text)
    (root / "workflow.yaml").write_text(
        f"apiVersion: kdeps.io/v1\nkind: Workflow\nmetadata:\n  name: docs\n  targetActionId: {target}\n"
    )
    return len(docs)


def test_every_page_has_snippets() -> None:
    pages = {p.parent.name for p in SNIPPETS}
    assert {"seed", "workflow", "resources"} <= pages
    assert len([p for p in SNIPPETS if p.parent.name == "seed"]) >= 20


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_doc_snippet_validates(snippet: Path, tmp_path: Path) -> None:
    expected = _agent_from_snippet(snippet, tmp_path)
    try:
        project = load_project(tmp_path)
    except SpecErrors as exc:  # pragma: no cover - shown on failure
        pytest.fail(f"{snippet.name} did not validate:\n{exc}")
    assert len(project.resources) == expected


def test_quickstart_agent_validates() -> None:
    project = load_project(DOCS.parent / "quickstart")
    assert list(project.resources) == ["llmResource", "responseResource"]
    chat = next(project.resources["llmResource"].chats())
    assert chat.backend is None and chat.timeout_duration == 60.0
    assert chat.json_response_keys == ["answer"]
    assert project.workflow.settings.api_server.routes[0].methods == ["POST"]
    assert project.target.response is not None


def test_seed_backends_are_kept() -> None:
    project = load_project_for("seed/mixing-backends.yaml")
    assert next(project.resources["fastSummary"].chats()).backend == "groq"
    assert project.resources["deepAnalysis"].requires == ("fastSummary",)


def test_complete_workflow_example_keeps_every_setting() -> None:
    project = load_project_for("workflow/complete.yaml")
    s = project.workflow.settings
    assert s.api_server.host_ip == "0.0.0.0" and s.api_server.cors.allow_credentials is True
    assert s.web_server is not None and s.web_server.routes[0].server_type == "static"
    assert s.agent_settings.base_os == "alpine" and s.agent_settings.offline_mode is True
    assert s.sql_connections["main"]["pool"]["maxConnections"] == 20
    assert s.session is not None and s.session.ttl == 86400.0 and s.session.cleanup_interval == 3600.0


def load_project_for(name: str, _cache: dict[str, object] = {}):  # noqa: B006 - tiny per-module cache
    import tempfile

    if name not in _cache:
        root = Path(tempfile.mkdtemp(prefix="kdeps-spec-"))
        _agent_from_snippet(DOCS / name, root)
        _cache[name] = load_project(root)
    return _cache[name]
