"""The backend declarations (`kdeps.llm.catalog`) are the one source: classes, registry, validation,
Docker planning and the README table read them; resolving a chat block's endpoint uses them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kdeps.deploy.ollama import IN_PROCESS_BACKENDS, OLLAMA_BACKENDS
from kdeps.llm import catalog, registry
from kdeps.llm.errors import AuthError
from kdeps.llm.registry import UnknownBackendError, resolve_endpoint
from kdeps.llm.types import Endpoint

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_backend_table_is_the_generated_one() -> None:
    assert catalog.markdown_table() in README.read_text(), \
        "README's backend table is stale: paste the output of `python -m kdeps.llm.catalog`"


@pytest.mark.parametrize("declaration", catalog.DECLARATIONS, ids=lambda d: d.name)
def test_each_declared_backend_loads_a_class_carrying_it(declaration: catalog.Declaration) -> None:
    backend = registry.get_backend(declaration.name)
    assert type(backend).declaration is declaration
    assert (backend.name, backend.env_var) == (declaration.name, declaration.env_var)
    assert registry.is_local(backend) == (declaration.runs == "in_process")


def test_validation_reads_the_names_without_loading_backends() -> None:
    code = ("import sys, kdeps.spec as s, kdeps.llm.catalog as c; assert s.BACKENDS == c.NAMES; "
            "loaded = [m for m in sys.modules if m == 'aiohttp' or m.startswith('kdeps.llm.backends.')]; "
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_docker_planner_reads_where_each_backend_runs() -> None:
    assert {"ollama", ""} == OLLAMA_BACKENDS  # '' = a chat block without backend: the default, ollama
    assert {"gguf"} == IN_PROCESS_BACKENDS


def _resolve(name: str | None, env: dict[str, str], **kwargs: str) -> Endpoint:
    kwargs.setdefault("base_url", "")
    kwargs.setdefault("api_key", "")
    return resolve_endpoint(name, env=env.get, **kwargs)  # type: ignore[arg-type]


def test_endpoint_from_block_values_then_env_then_declaration() -> None:
    env = {"OPENAI_API_KEY": " from-env ", "OLLAMA_HOST": "10.0.0.5:11434"}
    assert _resolve("openai", env).api_key == "from-env"
    explicit = _resolve("OpenAI", env, base_url="http://h/v1/", api_key="mine")
    assert (explicit.backend, explicit.base_url, explicit.api_key) == ("openai", "http://h/v1", "mine")
    assert _resolve("openai", env).base_url == "https://api.openai.com"
    assert _resolve("ollama", env).base_url == "http://10.0.0.5:11434"
    assert _resolve("ollama", env, ollama_url="http://o:1").base_url == "http://o:1"
    assert _resolve("gguf", env, base_url="ignored", workdir="/agent").base_url == "/agent"


def test_endpoint_default_backend_and_its_upstream_alias() -> None:
    assert _resolve(None, {}).backend == catalog.DEFAULT_BACKEND
    assert _resolve(None, {"KDEPS_DEFAULT_BACKEND": "file"}).backend == "gguf"


def test_endpoint_errors_before_any_call() -> None:
    with pytest.raises(AuthError, match="GROQ_API_KEY") as info:
        _resolve("groq", {"GROQ_API_KEY": " "}, api_key=" ")
    assert info.value.upstream_status == 0
    with pytest.raises(UnknownBackendError, match="did you mean 'openai'"):
        _resolve("opneai", {})
