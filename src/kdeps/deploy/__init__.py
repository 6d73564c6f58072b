"""Deployment: `.kdeps` packages, Dockerfile, entrypoint and docker-compose generation."""

from kdeps.deploy.build import BuildContext, docker_build, docker_engine, write_context
from kdeps.deploy.compose import compose_data, render_compose
from kdeps.deploy.dockerfile import render_dockerfile, render_entrypoint
from kdeps.deploy.ollama import OllamaDecision, needs_ollama
from kdeps.deploy.package import PackageError, collect_files, extract_archive, package_project
from kdeps.deploy.plan import GPU_KINDS, BuildPlan, plan_build

__all__ = [
    "GPU_KINDS", "BuildContext", "BuildPlan", "OllamaDecision", "PackageError", "collect_files",
    "compose_data", "docker_build", "docker_engine", "extract_archive", "needs_ollama", "package_project",
    "plan_build", "render_compose", "render_dockerfile", "render_entrypoint", "write_context",
]
