"""`kdeps export k8s`: every manifest validated against a pinned Kubernetes schema (offline, with
kubernetes-validate's bundled schemas), plus the decisions: which Secrets, Ollama, Redis, GPU,
autoscaler and NetworkPolicy, and refusing replicas without shared sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kdeps.deploy.k8s import ExportError, K8sExport, kubectl_secret_hint, plan_k8s, render_yaml
from kdeps.spec import load_project
from tests.agents import cli

kubernetes_validate = pytest.importorskip("kubernetes_validate")

KUBERNETES_VERSION = "1.30.0"
EXAMPLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "examples").iterdir() if p.is_dir())
SECRET_VALUE = "sk-live-abcdefghijklmnopqrstuvwxyz0123456789"


def validate_all(docs: list[dict[str, Any]]) -> None:
    """Schema-valid (strict: unknown fields rejected) and the house hygiene rules."""
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"] + pod.get("initContainers", []):
            where = f"{doc['metadata']['name']}/{container['name']}"
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"], where
            assert sc["readOnlyRootFilesystem"] and sc["capabilities"]["drop"] == ["ALL"], where
            res = container["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]), where
            assert {"cpu", "memory"} <= set(res["limits"]), where
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), where
            for env in container.get("env", []):
                assert "value" not in env or not _secretish(env["name"]), where


def _secretish(name: str) -> bool:
    return any(word in name for word in ("KEY", "TOKEN", "SECRET", "PASSWORD"))


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name} in {[(d['kind'], d['metadata']['name']) for d in docs]}"
    return found[0]


def agent_container(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return one(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]


def write_agent(root: Path, chats: list[dict[str, Any]] | None = None, settings: dict[str, Any] | None = None,
                name: str = "demo") -> Path:
    """An agent with one chat resource per entry of `chats` and an apiResponse target."""
    (root / "resources").mkdir(parents=True, exist_ok=True)
    ids = []
    for i, chat in enumerate(chats or []):
        ids.append(f"chat{i}")
        doc = {"apiVersion": "kdeps.io/v1", "kind": "Resource", "metadata": {"actionId": f"chat{i}"},
               "run": {"chat": {"prompt": "{{ get('q') }}", **chat}}}
        (root / "resources" / f"chat{i}.yaml").write_text(yaml.safe_dump(doc))
    response = {"apiVersion": "kdeps.io/v1", "kind": "Resource",
                "metadata": {"actionId": "response", "requires": ids},
                "run": {"apiResponse": {"success": True, "response": {"ok": True}}}}
    (root / "resources" / "response.yaml").write_text(yaml.safe_dump(response))
    wf_settings = {"apiServerMode": True, "apiServer": {"portNum": 8080, "routes": [
        {"path": "/api", "methods": ["POST"]}]}, **(settings or {})}
    workflow = {"apiVersion": "kdeps.io/v1", "kind": "Workflow",
                "metadata": {"name": name, "version": "1.0.0", "targetActionId": "response"},
                "settings": wf_settings}
    (root / "workflow.yaml").write_text(yaml.safe_dump(workflow, sort_keys=False))
    return root


def export(root: Path, **kwargs: Any) -> K8sExport:
    result = plan_k8s(load_project(root), **kwargs)
    validate_all(result.manifests)
    return result


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_exports_valid_manifests(example: Path) -> None:
    proc = cli("export", "k8s", str(example))
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    validate_all(docs)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service"} <= kinds
    container = agent_container(docs, example.name)
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"


def test_validator_rejects_a_broken_manifest() -> None:
    """The schema check is real: a misspelt field fails it."""
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
                                      "spec": {"portz": []}}, KUBERNETES_VERSION, strict=True)


def test_openai_with_anthropic_fallback_references_exactly_those_keys(tmp_path: Path) -> None:
    fallback = [{"backend": "anthropic", "model": "claude-3-5-haiku"}]
    root = write_agent(tmp_path / "a", [{"backend": "openai", "model": "gpt-4o-mini", "fallback": fallback}])
    result = export(root)
    keys = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "KDEPS_API_AUTH_TOKEN"]
    assert result.secret_keys == keys
    env = agent_container(result.manifests, "demo")["env"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env}
    assert refs == {k: {"name": "demo-secrets", "key": k} for k in keys}
    assert not by_kind(result.manifests, "Secret")  # names only: the user creates the Secret
    assert not any(d["metadata"]["name"].endswith("-ollama") for d in result.manifests)
    hint = kubectl_secret_hint(result)
    assert hint == ("kubectl create secret generic demo-secrets --from-literal=OPENAI_API_KEY=REPLACE_ME "
                    "--from-literal=ANTHROPIC_API_KEY=REPLACE_ME "
                    "--from-literal=KDEPS_API_AUTH_TOKEN=REPLACE_ME")


def test_keys_follow_the_blocks_that_read_them(tmp_path: Path) -> None:
    """A block naming its own key variable needs that one, not the backend's; a default backend from
    KDEPS_DEFAULT_BACKEND counts; the embedded model and Ollama need none."""
    root = write_agent(tmp_path / "a", [
        {"backend": "groq", "model": "m", "apiKey": "{{ get('TEAM_GROQ_KEY', 'env') }}"},
        {"model": "m"},
        {"backend": "gguf"},
    ], settings={"agentSettings": {"env": {"KDEPS_DEFAULT_BACKEND": "mistral"}}})
    result = export(root)
    assert result.secret_keys == ["TEAM_GROQ_KEY", "MISTRAL_API_KEY", "KDEPS_API_AUTH_TOKEN"]
    assert not any("ollama" in d["metadata"]["name"] for d in result.manifests)


def test_secret_values_never_reach_the_manifests(tmp_path: Path) -> None:
    root = write_agent(tmp_path / "a", settings={
        "apiServer": {"portNum": 8080, "authToken": "{{ get('KDEPS_API_AUTH_TOKEN', 'env') }}",
                      "routes": [{"path": "/api", "methods": ["POST"]}]},
        "agentSettings": {"env": {"APP_MODE": "production", "SERVICE_TOKEN": SECRET_VALUE,
                                  "DATABASE_URL": "postgres://user:hunter2@db:5432/app"}}})
    result = export(root)
    text = render_yaml(result)
    assert SECRET_VALUE not in text and "hunter2" not in text
    assert result.secret_keys == ["KDEPS_API_AUTH_TOKEN", "SERVICE_TOKEN", "DATABASE_URL"]
    assert one(result.manifests, "ConfigMap", "demo-config")["data"] == {"APP_MODE": "production"}


def test_ollama_agent_gets_its_own_deployment_volume_and_model_pull(tmp_path: Path) -> None:
    chats = [{"backend": "ollama", "model": "llama3.2:1b"}, {"model": "qwen2.5:0.5b"}]
    root = write_agent(tmp_path / "a", chats,
                       settings={"agentSettings": {"models": ["nomic-embed-text"]}})
    result = export(root)
    docs = result.manifests
    assert result.secret_keys == ["KDEPS_API_AUTH_TOKEN"]  # the API token, by name
    pvc = one(docs, "PersistentVolumeClaim", "demo-ollama-models")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    pod = one(docs, "Deployment", "demo-ollama")["spec"]["template"]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "demo-ollama-models"
    script = pod["initContainers"][0]["command"][-1]
    assert "for model in nomic-embed-text llama3.2:1b qwen2.5:0.5b; do" in script
    assert one(docs, "Service", "demo-ollama")["spec"]["ports"][0]["port"] == 11434
    assert one(docs, "ConfigMap", "demo-config")["data"]["OLLAMA_HOST"] == "http://demo-ollama:11434"
    assert GPU not in str(docs)


GPU = "nvidia.com/gpu"


def test_gpu_goes_to_the_container_running_the_model(tmp_path: Path) -> None:
    ollama = export(write_agent(tmp_path / "o", [{"model": "llama3.2:1b"}]), gpu=True).manifests
    pod = one(ollama, "Deployment", "demo-ollama")["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"][GPU] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert GPU not in str(one(ollama, "Deployment", "demo"))
    gguf = export(write_agent(tmp_path / "g", [{"backend": "gguf"}]), gpu=True).manifests
    assert agent_container(gguf, "demo")["resources"]["limits"][GPU] == 1


@pytest.mark.parametrize("session", [None, {"type": "sqlite"}, {"type": "memory"}])
def test_replicas_without_shared_sessions_are_refused_with_the_fix(tmp_path: Path, session: Any) -> None:
    settings = {"agentSettings": {"replicas": 3}, **({"session": session} if session else {})}
    root = write_agent(tmp_path / "a", settings=settings)
    with pytest.raises(ExportError) as err:
        plan_k8s(load_project(root))
    message = str(err.value)
    assert "3 replicas" in message and "type: redis" in message and "--replicas 1" in message
    proc = cli("export", "k8s", str(root))
    assert proc.returncode == 1 and "type: redis" in proc.stderr and "Traceback" not in proc.stderr
    assert export(root, replicas=1).manifests  # the other way out
    with pytest.raises(ExportError):  # an autoscaler that may add pods needs the same
        plan_k8s(load_project(root), replicas=1, hpa_max=4)


def test_local_redis_url_gets_a_redis_in_the_cluster(tmp_path: Path) -> None:
    root = write_agent(tmp_path / "a", settings={"agentSettings": {"replicas": 3},
                                                 "session": {"type": "redis", "url": "redis://localhost:6379/2"}})
    docs = export(root).manifests
    assert one(docs, "Deployment", "demo")["spec"]["replicas"] == 3
    assert one(docs, "Deployment", "demo-redis")["spec"]["replicas"] == 1
    assert one(docs, "Service", "demo-redis")["spec"]["ports"][0]["port"] == 6379
    assert one(docs, "ConfigMap", "demo-config")["data"]["KDEPS_SESSION_URL"] == "redis://demo-redis:6379/2"
    assert one(docs, "PodDisruptionBudget", "demo")["spec"]["maxUnavailable"] == 1
    external = write_agent(tmp_path / "b", settings={
        "agentSettings": {"replicas": 3}, "session": {"type": "redis", "url": "redis://cache.internal:6379/0"}})
    docs = export(external).manifests
    assert not any(d["metadata"]["name"] == "demo-redis" for d in docs)
    assert "KDEPS_SESSION_URL" not in str(docs)


def test_autoscaler_and_network_policies(tmp_path: Path) -> None:
    root = write_agent(tmp_path / "a", [{"model": "llama3.2:1b"}], settings={
        "session": {"type": "redis", "url": "redis://127.0.0.1:6379/0"}})
    docs = export(root, replicas=2, hpa_max=6, network_policy=True).manifests
    hpa = one(docs, "HorizontalPodAutoscaler", "demo")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"}
    agent = one(docs, "NetworkPolicy", "demo")["spec"]
    assert agent["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    for backing in ("demo-ollama", "demo-redis"):
        rule = one(docs, "NetworkPolicy", backing)["spec"]["ingress"][0]
        assert rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "agent"
    assert not by_kind(export(root).manifests, "NetworkPolicy")


def test_drain_timing_matches_the_server(tmp_path: Path) -> None:
    from kdeps.server.runner import GRACEFUL_SHUTDOWN_SECONDS

    pod = one(export(write_agent(tmp_path / "a")).manifests, "Deployment", "demo")["spec"]["template"]["spec"]
    pre_stop = int(pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + GRACEFUL_SHUTDOWN_SECONDS


# -- the upstream command's behaviours (tests/e2e/test_export_k8s.sh), on our own agents ------------


@pytest.fixture
def upstream_agent(tmp_path: Path) -> Path:
    return write_agent(tmp_path / "k8s-e2e-test", name="k8s-e2e-test", settings={
        "apiServer": {"portNum": 8080, "authToken": "{{ get('KDEPS_API_AUTH_TOKEN', 'env') }}",
                      "routes": [{"path": "/api", "methods": ["GET"]}]},
        "session": {"type": "redis", "url": "redis://localhost:6379/0"},
        "agentSettings": {"replicas": 2, "env": {"APP_ENV": "production"}, "resources": {
            "cpuLimit": "500m", "memoryLimit": "512Mi", "cpuRequest": "100m", "memoryRequest": "128Mi"}}})


def test_upstream_behaviours(upstream_agent: Path, tmp_path: Path) -> None:
    assert "Kubernetes" in cli("export", "k8s", "--help").stdout
    out = cli("export", "k8s", str(upstream_agent)).stdout
    for text in ("kind: Deployment", "kind: Service", "name: k8s-e2e-test", "replicas: 2",
                 "containerPort: 8080", "image: k8s-e2e-test:1.0.0", "APP_ENV", "secretKeyRef",
                 "KDEPS_API_AUTH_TOKEN"):
        assert text in out, text
    assert "kind: NetworkPolicy" not in out
    container = agent_container(list(yaml.safe_load_all(out)), "k8s-e2e-test")
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                      "limits": {"cpu": "500m", "memory": "512Mi"}}
    missing = cli("export", "k8s", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_upstream_flags(upstream_agent: Path) -> None:
    assert "replicas: 5" in cli("export", "k8s", str(upstream_agent), "--replicas", "5").stdout
    custom = cli("export", "k8s", str(upstream_agent), "-i", "my-registry/app:v2").stdout
    assert "image: my-registry/app:v2" in custom
    policy = cli("export", "k8s", str(upstream_agent), "--network-policy").stdout
    assert "kind: NetworkPolicy" in policy and "port: 8080" in policy


def test_output_file_and_kustomize_folder(upstream_agent: Path, tmp_path: Path) -> None:
    target = tmp_path / "deploy" / "k8s.yaml"
    proc = cli("export", "k8s", str(upstream_agent), "--output", str(target))
    assert proc.returncode == 0 and proc.stdout == ""
    hint = "kubectl create secret generic k8s-e2e-test-secrets --from-literal=KDEPS_API_AUTH_TOKEN="
    assert hint in proc.stderr
    stream = [d for d in yaml.safe_load_all(target.read_text()) if d]
    folder = tmp_path / "kustomize"
    assert cli("export", "k8s", str(upstream_agent), "-o", str(folder)).returncode == 0
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    files = [yaml.safe_load((folder / name).read_text()) for name in kustomization["resources"]]
    assert files == stream
    validate_all(files)


def test_install_ollama_and_web_only_agents(tmp_path: Path) -> None:
    ollama = write_agent(tmp_path / "o", settings={"agentSettings": {"installOllama": True}})
    assert "containerPort: 11434" in cli("export", "k8s", str(ollama)).stdout
    web = write_agent(tmp_path / "w", name="web-only", settings={
        "apiServerMode": False, "webServerMode": True,
        "webServer": {"portNum": 9090,
                      "routes": [{"path": "/", "serverType": "static", "publicPath": "public"}]}})
    (web / "public").mkdir()
    docs = export(web).manifests
    container = agent_container(docs, "web-only")
    assert container["ports"] == [{"name": "web", "containerPort": 9090, "protocol": "TCP"}]
    assert container["readinessProbe"]["tcpSocket"] == {"port": "web"}
    assert "--port" not in container["command"]


def test_workflow_network_policy_setting(tmp_path: Path) -> None:
    root = write_agent(tmp_path / "a", settings={"agentSettings": {"networkPolicy": True}})
    assert by_kind(export(root).manifests, "NetworkPolicy")
    assert not by_kind(export(root, network_policy=False).manifests, "NetworkPolicy")


def test_session_url_from_the_environment_replaces_a_redis_url(tmp_path: Path, monkeypatch) -> None:
    """What the ConfigMap's KDEPS_SESSION_URL does at start-up: the in-cluster Redis replaces the
    localhost URL of workflow.yaml; other stores are left alone."""
    from kdeps.server.config import settings_from_project

    redis = load_project(write_agent(tmp_path / "r", settings={
        "session": {"type": "redis", "url": "redis://localhost:6379/0"}}))
    sqlite = load_project(write_agent(tmp_path / "s", settings={"session": {"type": "sqlite"}}))
    assert settings_from_project(redis).session.url == "redis://localhost:6379/0"
    monkeypatch.setenv("KDEPS_SESSION_URL", "redis://demo-redis:6379/0")
    assert settings_from_project(redis).session.url == "redis://demo-redis:6379/0"
    assert settings_from_project(sqlite).session.type == "sqlite"
    assert settings_from_project(sqlite).session.url is None


def test_a_kdeps_archive_exports_like_its_folder(upstream_agent: Path, tmp_path: Path) -> None:
    assert cli("package", str(upstream_agent), "--output", str(tmp_path)).returncode == 0
    archive = next(tmp_path.glob("*.kdeps"))
    assert cli("export", "k8s", str(archive)).stdout == cli("export", "k8s", str(upstream_agent)).stdout
