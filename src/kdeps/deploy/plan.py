"""Everything a Docker build needs, decided once from a loaded project.

`plan_build` reads the workflow and resources and returns a `BuildPlan`: plain data that the
Dockerfile, entrypoint and compose renderers turn into text. All checks and warnings happen here,
so the renderers stay simple string building.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kdeps import __version__
from kdeps.deploy.ollama import IN_PROCESS_BACKENDS, OLLAMA_DEFAULT_PORT, chat_backends, needs_ollama
from kdeps.deploy.secrets import is_secret_env, literal_secrets

if TYPE_CHECKING:
    from kdeps.spec.loader import Project
    from kdeps.spec.workflow import Route

GPU_KINDS = ("cuda", "rocm", "intel", "vulkan")
DEFAULT_PYTHON = "3.12"
DEFAULT_OLLAMA_TAG = "0.13.5"
UV_IMAGE = "ghcr.io/astral-sh/uv:0.9.30"
CUDA_BASE = "nvidia/cuda:12.4.1-runtime-ubuntu22.04"
UBUNTU_BASE = "ubuntu:24.04"
DEFAULT_API_PORT = 3000
DEFAULT_WEB_PORT = 8080
HEALTH_PATHS = ("/health", "/healthz", "/livez", "/readyz", "/ready", "/ping")
# llama.cpp without -march=native: portable across CPUs, and avoids the AMX kernel crash seen on VMs.
LLAMA_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OS_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.\-]*(=[A-Za-z0-9.+:~\-]+)?$")
_TIMEZONE = re.compile(r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$")
_PY_VERSION = re.compile(r"^3\.(\d{1,2})(\.\d{1,2})?$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "::1", "")
_ENV_GET = re.compile(r"""^\{\{\s*get\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*,\s*['"]env['"]\s*\)\s*\}\}$""")


@dataclass
class BuildPlan:
    """The decisions behind one image. Renderers read it; nothing here touches the disk."""

    name: str
    version: str
    tag: str
    gpu: str | None = None
    kdeps_version: str = __version__
    kdeps_wheel: str | None = None          # file name inside the build context's wheels/
    python_version: str = DEFAULT_PYTHON
    runtime_image: str = ""
    builder_image: str = ""
    managed_python: bool = False            # uv installs Python (non-Python base images)
    ollama: bool = False
    ollama_reason: str = ""
    ollama_image: str = ""
    ollama_port: int = OLLAMA_DEFAULT_PORT
    ollama_local: bool = True               # chat resources talk to the Ollama inside the image
    models: list[str] = field(default_factory=list)
    offline: bool = False
    gguf: bool = False
    api_port: int | None = DEFAULT_API_PORT
    web_port: int | None = None
    health_path: str | None = None
    timezone: str = "Etc/UTC"
    python_packages: list[str] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)  # requirements/pyproject files, agent-relative
    os_packages: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    runtime_env: list[str] = field(default_factory=list)   # secrets: passed at run time, never baked
    secret_values: list[str] = field(default_factory=list, repr=False)  # blanked in the image's workflow
    args: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        """Container ports to expose, API first."""
        return [p for p in (self.api_port, self.web_port) if p]


def default_tag(name: str, version: str) -> str:
    """The image tag used when --tag is not given: <name>:<version> (docker-safe), as KDeps."""
    repo = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "agent"
    ver = version if _IMAGE_TAG.match(version) else "latest"
    return f"{repo}:{ver}"


def find_health_path(routes: list[Route]) -> str | None:
    """The first GET route that looks like a health check (/health, /healthz, ...), if any."""
    for route in routes:
        path = route.path.rstrip("/") or "/"
        methods = [m.upper() for m in route.methods]
        if (not methods or "GET" in methods) and path.lower().endswith(HEALTH_PATHS) and ":" not in path:
            return path
    return None


def _python_version(value: Any, warnings: list[str]) -> str:
    if value is None or str(value).strip() == "":
        return DEFAULT_PYTHON
    text = str(value).strip()
    match = _PY_VERSION.match(text)
    if not match:
        warnings.append(f"pythonVersion {text!r} is not a Python 3 version; using {DEFAULT_PYTHON}")
        return DEFAULT_PYTHON
    if int(match.group(1)) < 11:
        warnings.append(f"pythonVersion {text} is older than kdeps supports (3.11+); using {DEFAULT_PYTHON}")
        return DEFAULT_PYTHON
    return text


def _choose_bases(plan: BuildPlan, base_os: str | None) -> None:
    """Pick runtime/builder images: slim Debian Python for CPU, glibc Ubuntu (CUDA) bases for GPUs."""
    base_os = (base_os or "").strip().lower() or None
    if base_os == "alpine":
        plan.warnings.append("baseOS alpine is not used: Ollama and llama.cpp need glibc; "
                             "building on Debian slim instead")
    elif base_os not in (None, "debian", "ubuntu"):
        plan.warnings.append(f"baseOS {base_os!r} is not known; building on Debian slim")
    if plan.gpu == "cuda":
        plan.runtime_image = CUDA_BASE
    elif plan.gpu is not None or base_os == "ubuntu":
        plan.runtime_image = UBUNTU_BASE
    else:
        plan.runtime_image = f"python:{plan.python_version}-slim-bookworm"
    plan.managed_python = not plan.runtime_image.startswith("python:")
    # Build on the same base so compiled wheels match the runtime's glibc and Python.
    plan.builder_image = plan.runtime_image


def _ollama_wiring(plan: BuildPlan, url: str | None) -> None:
    if not url or "{{" in url:
        return   # unset, or decided at run time: the image's Ollama listens on the default port
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = (parts.hostname or "").lower()
    if host in _LOCAL_HOSTS:
        plan.ollama_port = parts.port or OLLAMA_DEFAULT_PORT
    else:
        plan.ollama_local = False
        if plan.ollama:
            plan.warnings.append(f"ollamaUrl points at {host}: chat resources will use that server, "
                                 "not the Ollama installed in the image")


def _split_env(plan: BuildPlan, env: dict[str, Any]) -> None:
    for key, raw in env.items():
        value = "" if raw is None else str(raw)
        if not _NAME.match(str(key)):
            plan.warnings.append(f"agentSettings.env: {key!r} is not a valid variable name; skipped")
        elif is_secret_env(key, value):
            plan.runtime_env.append(key)
            if value:
                plan.secret_values.append(value)
                plan.warnings.append(f"agentSettings.env.{key} looks like a secret: its value is blanked "
                                     "in the image's workflow.yaml; pass it at run time "
                                     f"(docker run -e {key}=...)")
        elif "\n" in value:
            plan.warnings.append(f"agentSettings.env.{key} spans several lines; skipped")
        else:
            plan.env[key] = value


def _token_var(auth_token: Any) -> str | None:
    """The variable the API token is read from at run time; None when workflow.yaml holds it."""
    if not auth_token:
        from kdeps.server.auth import TOKEN_ENV

        return TOKEN_ENV
    match = _ENV_GET.match(str(auth_token).strip())
    return match.group(1) if match else None


def _split_args(plan: BuildPlan, args: dict[str, Any]) -> None:
    for key, raw in args.items():
        value = "" if raw is None else str(raw)
        if not _NAME.match(str(key)) or "\n" in value:
            plan.warnings.append(f"agentSettings.args: {key!r} is not a valid build argument; skipped")
            continue
        if is_secret_env(key, value):
            plan.warnings.append(f"agentSettings.args.{key} looks like a secret: build arguments are "
                                 "visible in the image history; pass it at run time instead")
            plan.runtime_env.append(key)
            if value:
                plan.secret_values.append(value)
            continue
        plan.args[key] = value


def _chat_usage(project: Project) -> Any:
    from kdeps.deploy.k8s import chat_usage  # k8s builds on this module

    return chat_usage(project)


def plan_build(project: Project, gpu: str | None = None, tag: str | None = None,
               kdeps_wheel: str | None = None) -> BuildPlan:
    """Decide the contents of the image for a loaded project (see module doc)."""
    wf = project.workflow
    meta, settings = wf.metadata, wf.settings
    agent = settings.agent_settings
    name, version = str(meta.name), str(meta.version)
    if gpu is not None and gpu not in GPU_KINDS:
        raise ValueError(f"unknown GPU kind {gpu!r}; choose one of {', '.join(GPU_KINDS)}")
    plan = BuildPlan(name=name, version=version, tag=tag or default_tag(name, version), gpu=gpu,
                     kdeps_wheel=kdeps_wheel)
    plan.python_version = _python_version(agent.python_version, plan.warnings)
    _choose_bases(plan, agent.base_os)

    decision = needs_ollama(project)
    plan.ollama, plan.ollama_reason = decision.needed, decision.reason
    tag_value = str(agent.ollama_image_tag or DEFAULT_OLLAMA_TAG).strip()
    if not _IMAGE_TAG.match(tag_value) or tag_value == "latest":
        plan.warnings.append(f"ollamaImageTag {tag_value!r} is not a pinned version; "
                             f"using {DEFAULT_OLLAMA_TAG}")
        tag_value = DEFAULT_OLLAMA_TAG
    if plan.gpu == "rocm" and not tag_value.endswith("-rocm"):
        tag_value += "-rocm"
    plan.ollama_image = f"ollama/ollama:{tag_value}"
    _ollama_wiring(plan, agent.ollama_url)
    plan.models = [str(m) for m in agent.models] if plan.ollama else []
    if plan.ollama and plan.ollama_local:  # models chat resources name are pulled too
        plan.models += [m for m in _chat_usage(project).ollama_models if m not in plan.models]
    plan.offline = agent.offline_mode
    if plan.offline and plan.ollama and not plan.ollama_local:
        plan.warnings.append("offlineMode bakes models into the image, but ollamaUrl points elsewhere")
    plan.gguf = any(names & IN_PROCESS_BACKENDS for names in chat_backends(project).values())

    api, web = settings.api_server, settings.web_server
    # `kdeps run` serves the API unless the agent is a web server only (the seed-era switch, or no
    # resources beside web routes); web routes share the API's port unless given their own.
    web_only = web is not None and bool(web.routes) and (
        (settings.web_server_mode and not settings.api_server_mode) or not project.resources)
    if not web_only:
        plan.api_port = int(api.port_num or DEFAULT_API_PORT)
        plan.health_path = find_health_path(api.routes)
    else:
        plan.api_port = None
    if web is not None and web.routes and (web_only or (web.port_num and web.port_num != plan.api_port)):
        plan.web_port = int(web.port_num or DEFAULT_WEB_PORT)

    tz = agent.timezone or "Etc/UTC"
    if _TIMEZONE.match(tz):
        plan.timezone = tz
    else:
        plan.warnings.append(f"timezone {tz!r} is not a zone name; using Etc/UTC")

    plan.python_packages = [p.strip() for p in agent.python_packages if p.strip()]
    root = Path(project.root)
    files = ((agent.requirements_file, "requirementsFile"), (agent.pyproject_file, "pyprojectFile"))
    for rel, label in files:
        if not rel:
            continue
        if (root / rel).is_file() and not Path(rel).is_absolute() and ".." not in Path(rel).parts:
            plan.requirements.append(Path(rel).as_posix())
        else:
            plan.warnings.append(f"{label} {rel!r} is not a file inside the agent folder; skipped")
    if not plan.requirements and (root / "requirements.txt").is_file():
        plan.requirements.append("requirements.txt")
    if agent.lock_file:
        plan.warnings.append("lockFile is not used by kdeps build; dependencies resolve from "
                             "requirementsFile/pyprojectFile/pythonPackages")
    if agent.repositories:
        plan.warnings.append("agentSettings.repositories (apt PPAs) are not supported on the Debian/Ubuntu "
                             "bases; skipped")
    for pkg in agent.os_packages:
        if _OS_PACKAGE.match(str(pkg)):
            plan.os_packages.append(str(pkg))
        else:
            plan.warnings.append(f"osPackages: {pkg!r} is not a Debian package name; skipped")
    _split_env(plan, dict(agent.env))
    _split_args(plan, dict(agent.args))
    # each used backend's key, by name: compose and the `docker run` hint pass it from the shell
    plan.runtime_env += [k for k in _chat_usage(project).key_vars if k not in plan.runtime_env]
    if plan.api_port:
        # The container listens on 0.0.0.0, where the API refuses to start without its token.
        token_var = _token_var(api.auth_token)
        if token_var and token_var not in plan.runtime_env:
            plan.runtime_env.append(token_var)
    from kdeps.deploy.package import collect_files

    plan.warnings.extend(literal_secrets(Path(project.root).resolve(), collect_files(project).files))
    return plan
