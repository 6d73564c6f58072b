"""Kubernetes manifests for an agent (`kdeps export k8s`), built as plain data from a `BuildPlan`.

`plan_k8s` decides everything (image, replicas, which API keys become Secret references, whether
Ollama or Redis run beside the agent) and returns a `K8sExport`; `render_yaml` and
`write_kustomize` only dump it. Decisions worth knowing:

- The agent container runs `kdeps run` directly (under tini), so an image built with Ollama inside
  talks to the separate Ollama Deployment instead of starting its own.
- Secret *names* only: every API key the chat resources (and their fallbacks) read, the variable an
  `authToken` template reads, and secret-looking `agentSettings.env` keys become `secretKeyRef`s
  into one Secret, `<name>-secrets`, that the user creates (`kubectl_secret_hint`).
- More than one replica (or an autoscaler allowed to go past one) needs shared sessions: a sqlite
  or memory store is refused with the fix; a redis URL on localhost gets an in-cluster Redis and
  `KDEPS_SESSION_URL` pointing at it; any other redis URL is used as written.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from kdeps.deploy.dockerfile import AGENT_DIR, APP_UID, HEADER_MARK
from kdeps.deploy.ollama import OLLAMA_BACKENDS, OLLAMA_DEFAULT_PORT, needs_ollama
from kdeps.deploy.plan import BuildPlan, plan_build
from kdeps.deploy.usage import chat_calls, env_ref, key_variable
from kdeps.errors import KdepsError
from kdeps.llm.catalog import default_backend
from kdeps.server.config import SESSION_URL_ENV
from kdeps.server.runner import GRACEFUL_SHUTDOWN_SECONDS as DRAIN_SECONDS

# Endpoint removal reaches every kube-proxy/ingress a few seconds after a pod starts terminating;
# the pod keeps accepting connections that long before the server is told to drain.
PRESTOP_SECONDS = 5
GRACE_SECONDS = PRESTOP_SECONDS + DRAIN_SECONDS + 5
SESSION_DIR = f"{AGENT_DIR}/.kdeps"
REDIS_IMAGE = "redis:7.4.2-alpine"
REDIS_UID = 999  # the `redis` user of the official image
OLLAMA_DATA = "/data"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = "nvidia.com/gpu.present"
HPA_CPU_PERCENT = 70
DEFAULT_AGENT_RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"},
                           "limits": {"cpu": "1", "memory": "1Gi"}}
OLLAMA_RESOURCES = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}}
REDIS_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
OLLAMA_STORAGE = "20Gi"

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")
_RESOURCE_KEYS = {"cpuLimit": ("limits", "cpu"), "memoryLimit": ("limits", "memory"),
                  "cpuRequest": ("requests", "cpu"), "memoryRequest": ("requests", "memory")}
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


class ExportError(KdepsError):
    """The agent cannot be exported as asked; the message says how to fix it."""


@dataclass
class K8sExport:
    """The manifests of one agent, in apply order, and what the user must still provide."""

    name: str
    manifests: list[dict[str, Any]]
    secret_name: str
    secret_keys: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    kdeps_version: str = ""


def k8s_name(name: str) -> str:
    """A DNS-1123 label (Services need one) from a workflow name."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"agent-{cleaned}".strip("-")
    return cleaned[:50].rstrip("-")  # room for the -ollama/-redis/-secrets suffixes


def _label_value(value: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:63].strip("-_.")
    return cleaned or "unknown"


def _default_backend(agent_env: dict[str, str]) -> str:
    return default_backend(agent_env.get("KDEPS_DEFAULT_BACKEND"))


@dataclass
class _Usage:
    """What the chat resources need from the cluster."""

    backends: set[str] = field(default_factory=set)
    key_vars: list[str] = field(default_factory=list)  # env vars holding API keys, in first-use order
    ollama_models: list[str] = field(default_factory=list)


def chat_usage(project: Any) -> _Usage:
    """Backends, API-key variables and Ollama models of every chat block and its fallbacks."""
    env = {str(k): str(v) for k, v in project.workflow.settings.agent_settings.env.items()}
    usage = _Usage()
    for call in chat_calls(project, env):
        usage.backends.add(call.backend)
        var = key_variable(call)
        if var and var not in usage.key_vars:
            usage.key_vars.append(var)
        model = call.model
        known = bool(model) and "{{" not in model  # a model chosen per request cannot be pulled ahead
        if call.backend in OLLAMA_BACKENDS and known and model not in usage.ollama_models:
            usage.ollama_models.append(model)
    return usage


def _resources(raw: dict[str, Any] | None, warnings: list[str]) -> dict[str, dict[str, str]]:
    """agentSettings.resources (upstream's cpuLimit/memoryLimit/cpuRequest/memoryRequest, or the
    Kubernetes requests/limits shape) over the defaults."""
    out = {kind: dict(values) for kind, values in DEFAULT_AGENT_RESOURCES.items()}
    for key, value in (raw or {}).items():
        if key in ("requests", "limits") and isinstance(value, dict):
            pairs = [((key, str(k)), v) for k, v in value.items()]
        elif key in _RESOURCE_KEYS:
            pairs = [(_RESOURCE_KEYS[key], value)]
        else:
            warnings.append(f"agentSettings.resources.{key} is not known (use cpuLimit, memoryLimit, "
                            "cpuRequest, memoryRequest); skipped")
            continue
        for (kind, name), v in pairs:
            text = str(v).strip()
            if not _QUANTITY.match(text):
                warnings.append(f"agentSettings.resources: {text!r} is not a Kubernetes quantity; skipped")
                continue
            out[kind][name] = text
    return out


def _container_security(uid: int) -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


def _pod_security(uid: int) -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def _meta(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "labels": dict(labels)}


class _Builder:
    """Accumulates the manifests of one export."""

    def __init__(self, plan: BuildPlan, name: str) -> None:
        self.plan, self.name = plan, name
        self.base_labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": name,
                            "app.kubernetes.io/version": _label_value(plan.version),
                            "app.kubernetes.io/managed-by": "kdeps"}
        self.manifests: list[dict[str, Any]] = []

    def labels(self, component: str) -> dict[str, str]:
        return {**self.base_labels, "app.kubernetes.io/component": component,
                **({"app": self.name} if component == "agent" else {})}

    def selector(self, component: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.name, "app.kubernetes.io/component": component}

    def add(self, api_version: str, kind: str, name: str, component: str, **body: Any) -> dict[str, Any]:
        doc = {"apiVersion": api_version, "kind": kind, "metadata": _meta(name, self.labels(component)),
               **body}
        self.manifests.append(doc)
        return doc

    def service(self, name: str, component: str, ports: list[tuple[str, int]]) -> None:
        self.add("v1", "Service", name, component, spec={
            "type": "ClusterIP", "selector": self.selector(component),
            "ports": [{"name": n, "port": p, "targetPort": n, "protocol": "TCP"} for n, p in ports]})

    def deployment(self, name: str, component: str, replicas: int, pod: dict[str, Any],
                   strategy: dict[str, Any]) -> None:
        self.add("apps/v1", "Deployment", name, component, spec={
            "replicas": replicas, "revisionHistoryLimit": 5,
            "selector": {"matchLabels": self.selector(component)}, "strategy": strategy,
            "template": {"metadata": {"labels": self.labels(component)}, "spec": pod}})

    def ingress_policy(self, name: str, component: str, ports: list[int], from_agent: bool) -> None:
        rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": p} for p in ports]}
        if from_agent:
            rule["from"] = [{"podSelector": {"matchLabels": self.selector("agent")}}]
        # Egress is left open: chat, httpClient and the session store reach services outside the pod.
        self.add("networking.k8s.io/v1", "NetworkPolicy", name, component, spec={
            "podSelector": {"matchLabels": self.selector(component)}, "policyTypes": ["Ingress"],
            "ingress": [rule] if ports else []})


def _gpu_pod(pod: dict[str, Any], container: dict[str, Any]) -> None:
    container["resources"].setdefault("limits", {})[GPU_RESOURCE] = 1
    pod["nodeSelector"] = {GPU_NODE_LABEL: "true"}
    pod["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]


def _probe(path: str | None, port: str, period: int, failures: int = 3) -> dict[str, Any]:
    action: dict[str, Any] = ({"httpGet": {"path": path, "port": port}} if path
                              else {"tcpSocket": {"port": port}})
    return {**action, "periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": failures}


def _uses_sessions(project: Any) -> bool:
    """False only for an agent without resources (nothing can read or write a session)."""
    return bool(getattr(project, "resources", True))


def _session_wiring(project: Any, replicas: int, name: str) -> tuple[str | None, bool]:
    """(value for KDEPS_SESSION_URL or None, whether an in-cluster Redis is needed)."""
    session = project.workflow.settings.session
    kind = session.type if session is not None else "sqlite"
    if kind == "redis":
        parts = urlsplit(str(session.url))
        if (parts.hostname or "").lower() in _LOCAL_HOSTS:
            db = parts.path.strip("/") or "0"
            return f"redis://{name}-redis:6379/{db}", True
        return None, False
    if replicas > 1 and (session is not None or _uses_sessions(project)):
        raise ExportError(
            f"{replicas} replicas need one shared session store, but settings.session is {kind}"
            f"{' (the default)' if session is None else ''}: each pod would keep its own sessions. "
            "Fix: set\n  settings:\n    session:\n      type: redis\n      url: redis://localhost:6379/0\n"
            "in workflow.yaml (a localhost URL makes `kdeps export k8s` run a Redis in the cluster; "
            "any other URL is used as is), or export with --replicas 1.")
    return None, False


def plan_k8s(project: Any, *, image: str | None = None, replicas: int | None = None,
             network_policy: bool | None = None, gpu: bool = False, hpa_max: int | None = None) -> K8sExport:
    """Every manifest for the agent (see the module doc). Raises ExportError when the result could
    not work, e.g. several replicas with a per-process session store."""
    plan = plan_build(project)
    agent = project.workflow.settings.agent_settings
    name = k8s_name(plan.name)
    warnings = [w for w in plan.warnings if not w.startswith(("pythonVersion", "baseOS", "osPackages",
                                                               "agentSettings.repositories", "lockFile"))]
    count = replicas if replicas is not None else (agent.replicas or 1)
    if count < 1:
        raise ExportError("--replicas must be at least 1")
    if hpa_max is not None and hpa_max < count:
        raise ExportError(f"--hpa-max {hpa_max} is below the {count} replica(s) the autoscaler starts from")
    session_url, with_redis = _session_wiring(project, max(count, hpa_max or 0), name)

    usage = chat_usage(project)
    decision = needs_ollama(project)
    ollama = bool(decision) and plan.ollama_local
    named_ollama = bool(OLLAMA_BACKENDS & usage.backends)
    if decision and _default_backend(plan.env) not in OLLAMA_BACKENDS and not named_ollama \
            and not agent.models and agent.install_ollama is not True:
        ollama = False  # only unnamed backends wanted it, and KDEPS_DEFAULT_BACKEND says otherwise
    models = list(dict.fromkeys([*(str(m) for m in agent.models), *usage.ollama_models]))

    secret_keys = list(usage.key_vars)
    token_var = env_ref(project.workflow.settings.api_server.auth_token)
    for var in ([token_var] if token_var else []) + plan.runtime_env:
        if var not in secret_keys:
            secret_keys.append(var)
    if project.workflow.settings.api_server.auth_token and not token_var:
        warnings.append("apiServer.authToken is written in workflow.yaml; read it from a Secret instead: "
                        "authToken: \"{{ get('KDEPS_API_AUTH_TOKEN', 'env') }}\"")

    config: dict[str, str] = dict(plan.env)
    if ollama:
        ollama_url = f"http://{name}-ollama:{OLLAMA_DEFAULT_PORT}"
        config["OLLAMA_HOST"] = ollama_url
        if (url_var := env_ref(agent.ollama_url)) is not None:
            config[url_var] = ollama_url
        elif agent.ollama_url:
            warnings.append(f"agentSettings.ollamaUrl is {agent.ollama_url!r}; in the cluster Ollama is "
                            f"{ollama_url} (set in OLLAMA_HOST): remove ollamaUrl or make it "
                            "\"{{ get('OLLAMA_HOST', 'env') }}\"")
    if session_url:
        config[SESSION_URL_ENV] = session_url

    b = _Builder(plan, name)
    secret_name, config_name = f"{name}-secrets", f"{name}-config"
    if config:
        b.add("v1", "ConfigMap", config_name, "agent", data=config)

    web = project.workflow.settings.web_server
    # A web server without its own portNum shares the API's port.
    web_port = plan.web_port if not (plan.api_port and web is not None and web.port_num is None) else None
    if web_port == plan.api_port:
        web_port = None
    ports = [(n, p) for n, p in (("api", plan.api_port), ("web", web_port)) if p]
    command = ["tini", "--", "kdeps", "run", AGENT_DIR, "--host", "0.0.0.0"]
    if plan.api_port:
        command += ["--port", str(plan.api_port)]
    container: dict[str, Any] = {
        "name": "agent", "image": image or plan.tag, "imagePullPolicy": "IfNotPresent", "command": command,
        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports],
        "resources": _resources(agent.resources, warnings),
        "securityContext": _container_security(APP_UID),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "state", "mountPath": SESSION_DIR}],
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SECONDS)]}}},
    }
    if config:
        container["envFrom"] = [{"configMapRef": {"name": config_name}}]
    if secret_keys:
        container["env"] = [{"name": k, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": k}}}
                            for k in secret_keys]
    if ports:
        probe_port, http = (("api", True) if plan.api_port else ("web", False))
        container["startupProbe"] = _probe("/health" if http else None, probe_port, 5, failures=60)
        container["readinessProbe"] = _probe("/ready" if http else None, probe_port, 5)
        container["livenessProbe"] = _probe("/health" if http else None, probe_port, 20)
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False, "enableServiceLinks": False,
        "terminationGracePeriodSeconds": GRACE_SECONDS, "securityContext": _pod_security(APP_UID),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "state", "emptyDir": {}}],
    }
    if gpu and not ollama:
        _gpu_pod(pod, container)
        if "gguf" not in usage.backends:
            warnings.append("--gpu: no resource runs a model in the agent's pod; the GPU is requested anyway")
    b.deployment(name, "agent", count, pod,
                 {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    if ports:
        b.service(name, "agent", ports)
    if count > 1 or hpa_max:
        b.add("policy/v1", "PodDisruptionBudget", name, "agent",
              spec={"maxUnavailable": 1, "selector": {"matchLabels": b.selector("agent")}})
    if hpa_max:
        b.add("autoscaling/v2", "HorizontalPodAutoscaler", name, "agent", spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": count, "maxReplicas": hpa_max,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": HPA_CPU_PERCENT}}}]})
    if ollama:
        _ollama(b, plan, models, gpu)
    if with_redis:
        _redis(b)
    if network_policy if network_policy is not None else bool(agent.network_policy):
        b.ingress_policy(name, "agent", [p for _, p in ports], from_agent=False)
        if ollama:
            b.ingress_policy(f"{name}-ollama", "ollama", [OLLAMA_DEFAULT_PORT], from_agent=True)
        if with_redis:
            b.ingress_policy(f"{name}-redis", "redis", [6379], from_agent=True)
    from kdeps import __version__

    return K8sExport(name=name, manifests=b.manifests, secret_name=secret_name, secret_keys=secret_keys,
                     warnings=warnings, kdeps_version=__version__)


def _ollama(b: _Builder, plan: BuildPlan, models: list[str], gpu: bool) -> None:
    """Ollama in its own Deployment, models on a volume, pulled by an init container before it is
    Ready (a temporary server on 127.0.0.1 inside the init container does the pulling)."""
    name = f"{b.name}-ollama"
    env = [{"name": "HOME", "value": OLLAMA_DATA},
           {"name": "OLLAMA_MODELS", "value": f"{OLLAMA_DATA}/models"}]
    mounts = [{"name": "models", "mountPath": OLLAMA_DATA}, {"name": "tmp", "mountPath": "/tmp"}]
    server: dict[str, Any] = {
        "name": "ollama", "image": plan.ollama_image, "imagePullPolicy": "IfNotPresent", "args": ["serve"],
        "env": [*env, {"name": "OLLAMA_HOST", "value": f"0.0.0.0:{OLLAMA_DEFAULT_PORT}"}],
        "ports": [{"name": "ollama", "containerPort": OLLAMA_DEFAULT_PORT, "protocol": "TCP"}],
        "resources": {k: dict(v) for k, v in OLLAMA_RESOURCES.items()},
        "securityContext": _container_security(APP_UID), "volumeMounts": mounts,
        "readinessProbe": _probe("/", "ollama", 10), "livenessProbe": _probe("/", "ollama", 30),
    }
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False, "enableServiceLinks": False,
        "securityContext": _pod_security(APP_UID), "containers": [server],
        "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": f"{name}-models"}},
                    {"name": "tmp", "emptyDir": {}}],
    }
    if models:
        script = "\n".join([
            "set -eu",
            "ollama serve & server=$!",
            "i=0",
            "until ollama list >/dev/null 2>&1; do",
            '  i=$((i + 1)); [ "$i" -le 60 ] || { echo "ollama did not start" >&2; exit 1; }; sleep 1',
            "done",
            "for model in " + " ".join(shlex.quote(m) for m in models) + "; do",
            '  echo "pulling $model"; ollama pull "$model"',
            "done",
            'kill "$server"; wait "$server" || true',
        ])
        pod["initContainers"] = [{
            "name": "pull-models", "image": plan.ollama_image, "imagePullPolicy": "IfNotPresent",
            "command": ["/bin/sh", "-c", script],
            "env": [*env, {"name": "OLLAMA_HOST", "value": f"127.0.0.1:{OLLAMA_DEFAULT_PORT}"}],
            "resources": {k: dict(v) for k, v in OLLAMA_RESOURCES.items()},
            "securityContext": _container_security(APP_UID), "volumeMounts": mounts,
        }]
    if gpu:
        _gpu_pod(pod, server)
    b.add("v1", "PersistentVolumeClaim", f"{name}-models", "ollama", spec={
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": OLLAMA_STORAGE}}})
    # One writer per volume: the old pod stops before the new one mounts the models.
    b.deployment(name, "ollama", 1, pod, {"type": "Recreate"})
    b.service(name, "ollama", [("ollama", OLLAMA_DEFAULT_PORT)])


def _redis(b: _Builder) -> None:
    """A single Redis for sessions; they live as long as its pod (sessions expire anyway)."""
    name = f"{b.name}-redis"
    container: dict[str, Any] = {
        "name": "redis", "image": REDIS_IMAGE, "imagePullPolicy": "IfNotPresent",
        "args": ["redis-server", "--save", "", "--appendonly", "no", "--protected-mode", "no"],
        "ports": [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}],
        "resources": {k: dict(v) for k, v in REDIS_RESOURCES.items()},
        "securityContext": _container_security(REDIS_UID),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 5,
                           "timeoutSeconds": 3},
        "livenessProbe": _probe(None, "redis", 20),
    }
    pod = {"automountServiceAccountToken": False, "enableServiceLinks": False,
           "securityContext": _pod_security(REDIS_UID), "containers": [container],
           "volumes": [{"name": "data", "emptyDir": {}}]}
    b.deployment(name, "redis", 1, pod, {"type": "Recreate"})
    b.service(name, "redis", [("redis", 6379)])


def kubectl_secret_hint(export: K8sExport) -> str | None:
    """The command that creates the Secret the Deployment reads, with placeholders for the values."""
    if not export.secret_keys:
        return None
    literals = " ".join(f"--from-literal={k}=REPLACE_ME" for k in export.secret_keys)
    return f"kubectl create secret generic {export.secret_name} {literals}"


def render_yaml(export: K8sExport) -> str:
    """All manifests as one multi-document YAML stream."""
    head = f"{HEADER_MARK} {export.kdeps_version} (kdeps export k8s) for agent {export.name}.\n"
    return head + "---\n".join(_dump(doc) for doc in export.manifests)


class _Dumper(yaml.SafeDumper):
    """No anchors/aliases (manifests repeat small blocks); scripts as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def file_name(doc: dict[str, Any]) -> str:
    """`deployment-chatbot.yaml` style names, unique within one export."""
    return f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"


def write_kustomize(export: K8sExport, folder: Path) -> list[Path]:
    """One file per manifest plus kustomization.yaml listing them; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    names = []
    for doc in export.manifests:
        path = folder / file_name(doc)
        path.write_text(_dump(doc))
        written.append(path)
        names.append(path.name)
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": names}
    path = folder / "kustomization.yaml"
    path.write_text(f"{HEADER_MARK} {export.kdeps_version} (kdeps export k8s) for agent {export.name}.\n"
                    + _dump(kustomization))
    written.append(path)
    return written
