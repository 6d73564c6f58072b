"""`kdeps export k8s` on the kinds of agents KDeps' own export accepts: a workflow without resources
(replicas and all), a web server alone whose routes omit `serverType`; the default image is
`<name>:<version>` and the API token is a Secret reference."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from tests.e2e.server_utils import kdeps_argv


def _kdeps(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KDEPS_API_AUTH_TOKEN": ""}
    return subprocess.run([*kdeps_argv(), *args], capture_output=True, text=True, timeout=60, env=env)


def _workflow(root: Path, name: str, settings: dict) -> Path:
    root.mkdir(parents=True)
    (root / "workflow.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kdeps.io/v1", "kind": "Workflow",
        "metadata": {"name": name, "version": "2.0.1", "targetActionId": "main"},
        "settings": settings}, sort_keys=False))
    return root


def test_workflow_without_resources_exports_with_replicas(tmp_path: Path) -> None:
    agent = _workflow(tmp_path / "a", "bare-agent", {
        "apiServer": {"portNum": 8181, "routes": [{"path": "/api", "methods": ["GET"]}]},
        "agentSettings": {"replicas": 3, "env": {"APP_ENV": "staging"}}})
    done = _kdeps("export", "k8s", str(agent))
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "bare-agent:2.0.1"
    assert {"name": "api", "containerPort": 8181, "protocol": "TCP"} in container["ports"]
    token = next(e for e in container["env"] if e["name"] == "KDEPS_API_AUTH_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["key"] == "KDEPS_API_AUTH_TOKEN"
    assert "APP_ENV" in done.stdout


def test_workflow_without_resources_exports_but_does_not_validate(tmp_path: Path) -> None:
    agent = _workflow(tmp_path / "a", "bare-agent", {
        "apiServer": {"routes": [{"path": "/api", "methods": ["GET"]}]}})
    for command in (("validate",), ("run", "--once")):
        done = _kdeps(command[0], str(agent), *command[1:])
        assert done.returncode != 0 and "targetActionId 'main' names no resource" in done.stderr
        assert "Traceback" not in done.stderr


def test_web_server_alone_without_server_type(tmp_path: Path) -> None:
    agent = _workflow(tmp_path / "w", "web-alone", {
        "webServer": {"portNum": 9191, "routes": [{"path": "/", "publicPath": "public"}]}})
    (agent / "public").mkdir()
    done = _kdeps("export", "k8s", str(agent))
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert [p["name"] for p in container["ports"]] == ["web"]
    assert container["readinessProbe"]["tcpSocket"] == {"port": "web"}
    assert "KDEPS_API_AUTH_TOKEN" not in done.stdout  # no API, nothing to guard


def test_server_type_defaults_from_the_route(tmp_path: Path) -> None:
    from kdeps.spec.workflow import WebRoute

    assert WebRoute.model_validate({"path": "/", "publicPath": "site"}).server_type == "static"
    assert WebRoute.model_validate({"path": "/app", "appPort": 8501}).server_type == "app"
