"""Discoverable: the startup banner (full URLs, built-in endpoints, a curl line), `kdeps new
--backend` checked, scaffolds that name their schema for editors, and docs/reference.md in step
with the schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.agents import cli, make_agent
from tests.e2e.server_utils import running

ROOT = Path(__file__).resolve().parents[2]


def test_banner_has_full_urls_and_a_curl_line(tmp_path: Path) -> None:
    root = make_agent(tmp_path / "a", {"response": """\
        metadata: {actionId: response}
        run:
          apiResponse: {success: true, response: {v: "ok"}}
        """})
    with running(root) as server:
        out = server.stdout
    url = server.url
    assert f"  POST /api/v1/run  {url}/api/v1/run" in out
    assert f"{url}/health" in out and f"{url}/ready" in out and f"{url}/metrics" in out
    curl = next(line for line in out.splitlines() if line.startswith("Try it:"))
    assert f"curl -s -X POST {url}/api/v1/run -H 'Content-Type: application/json'" in curl


def test_new_checks_the_backend(tmp_path: Path) -> None:
    out = cli("new", str(tmp_path / "x"), "--backend", "opnai")
    assert out.returncode == 2
    assert "unknown backend 'opnai' (did you mean 'openai'?)" in out.stderr
    assert not (tmp_path / "x").exists()


def test_scaffold_names_its_schema_and_matches_it(tmp_path: Path) -> None:
    target = tmp_path / "agent"
    assert cli("new", str(target), "--backend", "ollama").returncode == 0
    for rel in ("workflow.yaml", "resources/llm.yaml", "resources/response.yaml"):
        file = target / rel
        first = file.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=")
        schema_file = (file.parent / first.split("$schema=", 1)[1]).resolve()
        schema = json.loads(schema_file.read_text())
        jsonschema.validate(yaml.safe_load(file.read_text()), schema)
    assert cli("validate", str(target)).returncode == 0


def test_reference_is_up_to_date() -> None:
    from kdeps.spec.reference import render

    written = (ROOT / "docs" / "reference.md").read_text()
    assert written == render(), "regenerate: kdeps schema --markdown > docs/reference.md"


def test_reference_lists_every_key() -> None:
    from kdeps.spec.schema import json_schema

    text = (ROOT / "docs" / "reference.md").read_text()
    for name, block in json_schema(None)["definitions"].items():
        assert f"## {name}\n" in text
        for key in block.get("properties") or {}:
            assert f"| `{key}`" in text, f"{name}.{key}"


@pytest.mark.local_model
@pytest.mark.slow  # a process that loads the model, then generates
def test_a_log_line_while_the_embedded_model_loads(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    import shutil
    import urllib.request

    agent = tmp_path / "hello"
    shutil.copytree(ROOT / "examples" / "hello", agent)
    with running(agent, "--log-format", "text") as server:
        req = urllib.request.Request(server.url + "/api/v1/chat", data=b'{"q": "Hi"}', method="POST",
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            assert r.status == 200
        log = server.stderr
    assert "loading the embedded model SmolLM2" in log and "loaded in" in log
