"""P6 embedded model: tokens/s of the `gguf` backend through `kdeps run` vs llama-cpp-python called
directly on the same prompt, model file and settings (skipped with a note without the `local` extra)."""

from __future__ import annotations

import os
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from bench.common import (
    WORKFLOW,
    Result,
    Row,
    client_session,
    median,
    run_async,
    services,
    start_kdeps,
    write_agent,
)

TITLE = "P6 embedded model tokens/s"
PROMPT = "Write a short poem about the sea."
MAX_TOKENS = 64
MODEL = "smollm2:135m"


def _agent(root: Path) -> Path:
    chat = textwrap.dedent(f"""\
        apiVersion: kdeps.io/v1
        kind: Resource
        metadata:
          actionId: answer
        run:
          chat:
            backend: gguf
            model: "{MODEL}"
            prompt: "{{{{ get('q') }}}}"
            maxTokens: {MAX_TOKENS}
            temperature: 0
            timeoutDuration: 120s
        """)
    response = textwrap.dedent("""\
        apiVersion: kdeps.io/v1
        kind: Resource
        metadata:
          actionId: response
          requires: [answer]
        run:
          apiResponse:
            success: true
            response:
              text: "{{ llm.response('answer') }}"
              usage: "{{ llm.usage('answer') }}"
        """)
    return write_agent(root, {"answer": chat, "response": response}, WORKFLOW)


async def _through_kdeps(session: Any, url: str) -> float:
    """Tokens/s of one request through `kdeps run` (client-side wall time)."""
    began = time.perf_counter()
    async with session.post(url + "/api/v1/run", json={"q": PROMPT}) as r:
        data = await r.json()
    elapsed = time.perf_counter() - began
    if r.status != 200:
        raise RuntimeError(f"gguf through kdeps failed: {data}")
    return data["data"]["usage"]["output_tokens"] / elapsed


def _direct_model() -> Any:
    from llama_cpp import Llama

    from kdeps.llm.backends.gguf import DEFAULT_CONTEXT, resolve_model

    return Llama(model_path=str(resolve_model(MODEL, ".")), n_ctx=DEFAULT_CONTEXT,
                 n_threads=os.cpu_count() or 2, verbose=False)


def _direct(llama: Any) -> float:
    began = time.perf_counter()
    out = llama.create_chat_completion(messages=[{"role": "user", "content": PROMPT}],
                                       max_tokens=MAX_TOKENS, temperature=0)
    return out["usage"]["completion_tokens"] / (time.perf_counter() - began)


async def _trials(url: str, runs: int) -> tuple[list[float], list[float]]:
    """One request each way per round, alternating which goes first (the box is noisy)."""
    llama = _direct_model()
    ours: list[float] = []
    direct: list[float] = []
    async with client_session(1) as session:
        await _through_kdeps(session, url)  # loads the model in the server
        _direct(llama)
        for i in range(runs):
            if i % 2:
                direct.append(_direct(llama))
                ours.append(await _through_kdeps(session, url))
            else:
                ours.append(await _through_kdeps(session, url))
                direct.append(_direct(llama))
    return ours, direct


def run(quick: bool = False) -> Result:
    result = Result("p6", TITLE)
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        result.notes.append("P6 skipped: llama_cpp is not importable (install the `local` extra)")
        return result
    runs = 4 if quick else 10
    with services() as started, tempfile.TemporaryDirectory(prefix="kdeps-bench-p6-") as tmp:
        server = start_kdeps(_agent(Path(tmp) / "agent"))
        started.append(server)
        ours, direct = run_async(_trials(server.url, runs))
    mine, base = median(ours), median(direct)
    result.data = {"kdeps_tokens_per_s": mine, "direct_tokens_per_s": base, "max_tokens": MAX_TOKENS,
                   "runs": {"kdeps": ours, "direct": direct}}
    result.rows.append(Row("P6", "gguf tokens/s through kdeps run", mine, base, "llama-cpp-python direct",
                           "tok/s", mine / base, ">= 0.9 (informative)", mine / base >= 0.9))
    return result
