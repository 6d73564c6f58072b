"""Property tests: whatever YAML sits in workflow.yaml or a resource file, `load_project` either loads
the agent or raises a typed `KdepsError` (file:line:col messages) — never another Python exception."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kdeps.errors import KdepsError
from kdeps.spec import load_project

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

WORKFLOW: dict[str, Any] = {
    "apiVersion": "kdeps.io/v1",
    "kind": "Workflow",
    "metadata": {"name": "prop", "version": "1.0.0", "targetActionId": "response"},
    "settings": {
        "apiServerMode": True,
        "apiServer": {"hostIp": "127.0.0.1", "portNum": 3000,
                      "routes": [{"path": "/api/v1/run", "methods": ["POST", "GET"]}],
                      "cors": {"enableCors": True, "allowOrigins": ["http://localhost"]}},
        "agentSettings": {"timezone": "Etc/UTC", "pythonPackages": ["requests"], "models": ["llama3.2:1b"]},
        "session": {"type": "memory", "ttl": "30m"},
    },
}
CHAT: dict[str, Any] = {
    "apiVersion": "kdeps.io/v1",
    "kind": "Resource",
    "metadata": {"actionId": "llm", "name": "LLM", "requires": []},
    "run": {
        "restrictToHttpMethods": ["POST"],
        "skipCondition": ["get('skip') == true"],
        "preflightCheck": {"validations": ["get('q') != ''"], "error": {"code": 400, "message": "q?"}},
        "chat": {"backend": "openai", "model": "gpt-4o", "prompt": "{{ get('q') }}",
                 "scenario": [{"role": "system", "prompt": "Be brief."}], "jsonResponse": True,
                 "jsonResponseKeys": ["answer"], "timeoutDuration": "30s",
                 "retry": {"maxAttempts": 3, "initialDelay": "1s"},
                 "tools": [{"name": "calc", "script": "calc", "description": "math",
                            "parameters": {"expr": {"type": "string", "required": True}}}]},
        "onError": {"action": "continue", "fallback": {"answer": "n/a"}},
    },
}
RESPONSE: dict[str, Any] = {
    "apiVersion": "kdeps.io/v1",
    "kind": "Resource",
    "metadata": {"actionId": "response", "requires": ["llm"]},
    "run": {"expr": ["set('x', 1)"],
            "apiResponse": {"success": True, "response": {"data": "{{ llm.response('llm') }}"}}},
}

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**66), max_value=2**66),
                    st.floats(), st.text(max_size=12),
                    st.sampled_from(["", "1s", "-5m", "30", "{{ get('q') }}", "{{", "ollama", "POST",
                                     "response", "llm", "/api/v1/run", "nan", "1e999", "~", "null"]))
junk = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(
        ["actionId", "requires", "chat", "model", "routes", "path", "methods", "run", "expr", "backend",
         "apiResponse", "retry", "items", "onError"])), inner, max_size=3)), max_leaves=6)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """`base` with a few random edits: a value replaced by junk, a key added or removed."""
    doc: Any = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(doc)))
        action = draw(st.sampled_from(["replace", "add", "delete"]))
        if not path:
            if action == "replace":
                doc = draw(junk)
            continue
        parent = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
        except (KeyError, IndexError, TypeError):
            continue
        last = path[-1]
        if action == "replace":
            parent[last] = draw(junk)
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(junk)
        elif action == "delete" and isinstance(parent, dict):
            parent.pop(last, None)
    return doc


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _load(workflow: str, resources: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="kdeps-prop-") as tmp:
        root = Path(tmp)
        (root / "resources").mkdir()
        (root / "workflow.yaml").write_text(workflow, encoding="utf-8", errors="surrogatepass")
        for name, text in resources.items():
            (root / "resources" / f"{name}.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_project(root)
        except KdepsError as err:
            assert str(err)


CALC: dict[str, Any] = {
    "apiVersion": "kdeps.io/v1",
    "kind": "Resource",
    "metadata": {"actionId": "calc"},
    "run": {"python": {"script": "print(1 + 1)", "timeoutDuration": "5s"}},
}
GOOD = {"llm": _dump(CHAT), "response": _dump(RESPONSE), "calc": _dump(CALC)}


def test_the_base_documents_load() -> None:
    # the mutations start from a valid agent, so the properties below test the edges of validity
    _load(_dump(WORKFLOW), GOOD)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "resources").mkdir()
        (root / "workflow.yaml").write_text(_dump(WORKFLOW))
        for name, text in GOOD.items():
            (root / "resources" / f"{name}.yaml").write_text(text)
        assert load_project(root).workflow.metadata.target_action_id == "response"


@SETTINGS
@given(mutated(WORKFLOW))
def test_mutated_workflow(doc: Any) -> None:
    _load(_dump(doc), GOOD)


@SETTINGS
@given(mutated(CHAT), mutated(RESPONSE))
def test_mutated_resources(chat: Any, response: Any) -> None:
    _load(_dump(WORKFLOW), {**GOOD, "llm": _dump(chat), "response": _dump(response)})


@SETTINGS
@given(st.lists(st.one_of(mutated(CHAT), junk), min_size=0, max_size=3))
def test_multi_document_resource_files(docs: list[Any]) -> None:
    _load(_dump(WORKFLOW), {**GOOD, "llm": yaml.safe_dump_all(docs)})


YAML_TRICKS = ["!!python/object/apply:os.system ['echo hi']", "&a [*a]", "a: &x 1\nb: *y", "{", "- - -",
               "key: value\nkey: again", "? [a, b]\n: c", "\t- tab", "---\n...\n---", "%YAML 1.1\n---\na: 1",
               "a: !!binary aGVsbG8=", "a: 2001-12-14", "a: [1, 2", "\ufeffkind: Workflow", "x: \x00",
               "kind: Workflow\nmetadata: null", "apiVersion: kdeps.io/v1\nkind: Resource\n"]


@SETTINGS
@given(st.lists(st.one_of(st.text(max_size=30), st.sampled_from(YAML_TRICKS)), max_size=4).map("\n".join))
@example("a: &a [*a, *a]\n" + "b: &b [*a, *a]\n" * 5)
@example("[" * 2000)
def test_arbitrary_text(text: str) -> None:
    _load(text, GOOD)
    _load(_dump(WORKFLOW), {**GOOD, "llm": text})
