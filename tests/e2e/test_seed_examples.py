"""Every YAML example of the LLM backends reference page (`seed/llm-backends-reference.txt`) run end to
end as a user runs it — `kdeps run AGENT --once --input q=...` in a subprocess — against the fakes.

The examples live in `tests/data/chat/seed/` as written on the page; the only addition for cloud
backends is `baseUrl: "{{ get('FAKE_URL', 'env') }}"` so they reach the fake instead of the internet
(Ollama's default URL comes from the workflow's `agentSettings.ollamaUrl`). Also here: the
calculator-tool example (`examples/tools-calculator`) and image upload through the HTTP server."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.server_utils import running
from tests.fakes import anthropic as anthropic_fake
from tests.fakes import cohere as cohere_fake
from tests.fakes import google as google_fake
from tests.fakes.base import FakeServer, Recorded
from tests.fakes.ollama import OllamaFake
from tests.fakes.openai_compat import DEFAULT_KEY, OpenAICompatFake

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "chat"
SEED = DATA / "seed"
KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "COHERE_API_KEY", "MISTRAL_API_KEY",
            "TOGETHER_API_KEY", "PERPLEXITY_API_KEY", "GROQ_API_KEY", "DEEPSEEK_API_KEY", "AZURE_OPENAI_KEY",
            "OLLAMA_URL", "FAKE_URL")
SECRETS: set[str] = set()  # every key handed to a run; none may appear in any output


def agent(tmp_path: Path, *seed_files: str, target: str = "answer") -> Path:
    root = tmp_path / "agent"
    (root / "resources").mkdir(parents=True)
    (root / "workflow.yaml").write_text((DATA / "workflow.yaml").read_text().replace("__TARGET__", target))
    for name in seed_files:
        shutil.copy(SEED / f"{name}.yaml", root / "resources" / f"{name}.yaml")
    return root


def once(path: Path, env: dict[str, str], **inputs: str) -> tuple[int, Any, str]:
    """`kdeps run PATH --once --input k=v ...` with only `env` on top of a key-free environment."""
    clean = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    SECRETS.update(v for k, v in env.items() if "KEY" in k)
    args = [sys.executable, "-m", "kdeps", "run", str(path), "--once"]
    for key, value in inputs.items():
        args += ["--input", f"{key}={value}"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, env={**clean, **env})
    for secret in SECRETS:
        assert secret not in proc.stdout and secret not in proc.stderr, "an API key leaked into the output"
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        out = proc.stdout
    return proc.returncode, out, proc.stderr


def posts(fake: FakeServer) -> list[Recorded]:
    return [r for r in fake.requests if r.method == "POST"]


# -- Ollama ----------------------------------------------------------------------------------------------

@pytest.fixture
def ollama() -> Iterator[OllamaFake]:
    with OllamaFake() as fake:
        yield fake


def test_ollama_default(tmp_path: Path, ollama: OllamaFake) -> None:
    ollama.say("Hello to you too!")
    code, out, err = once(agent(tmp_path, "ollama-default"), {"OLLAMA_URL": ollama.url})
    assert code == 0, err
    assert out["data"] == "Hello to you too!"
    assert out["meta"]["model"] == "llama3.2:1b" and out["meta"]["backend"] == "ollama"
    assert [c["model"] for c in out["meta"]["llm"]] == ["llama3.2:1b"]
    (req,) = posts(ollama)
    assert req.path == "/api/chat"
    assert req.json["model"] == "llama3.2:1b" and req.json["stream"] is False
    assert req.json["messages"] == [{"role": "user", "content": "Hello, world!"}]


def test_ollama_custom_url(tmp_path: Path, ollama: OllamaFake) -> None:
    ollama.say("custom")
    # the workflow's ollamaUrl is unset (empty env); the resource's baseUrl decides
    code, out, err = once(agent(tmp_path, "ollama-custom-url"), {"FAKE_URL": ollama.url}, q="What is AI?")
    assert code == 0, err
    assert out["data"] == "custom"
    assert posts(ollama)[0].json["messages"][-1]["content"] == "What is AI?"


# -- each cloud backend ----------------------------------------------------------------------------------

CLOUD = {
    # name: (fake factory, env var, key, how the fake sees the key, model)
    "openai": (lambda: OpenAICompatFake("openai"), "OPENAI_API_KEY", DEFAULT_KEY),
    "mistral": (lambda: OpenAICompatFake("mistral"), "MISTRAL_API_KEY", DEFAULT_KEY),
    "together": (lambda: OpenAICompatFake("together"), "TOGETHER_API_KEY", DEFAULT_KEY),
    "perplexity": (lambda: OpenAICompatFake("perplexity"), "PERPLEXITY_API_KEY", DEFAULT_KEY),
    "groq": (lambda: OpenAICompatFake("groq"), "GROQ_API_KEY", DEFAULT_KEY),
    "deepseek": (lambda: OpenAICompatFake("deepseek"), "DEEPSEEK_API_KEY", DEFAULT_KEY),
    "anthropic": (anthropic_fake.AnthropicFake, "ANTHROPIC_API_KEY", anthropic_fake.KEY),
    "google": (google_fake.GeminiFake, "GOOGLE_API_KEY", google_fake.KEY),
    "cohere": (cohere_fake.CohereFake, "COHERE_API_KEY", cohere_fake.KEY),
}
MODELS = {"openai": "gpt-4o", "mistral": "mistral-large-latest",
          "together": "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo",
          "perplexity": "llama-3.1-sonar-large-128k-online", "groq": "llama-3.1-70b-versatile",
          "deepseek": "deepseek-chat", "anthropic": "claude-3-5-sonnet-20241022", "google": "gemini-1.5-pro",
          "cohere": "command-r-plus"}


def script(fake: Any, text: str) -> None:
    (fake.say if hasattr(fake, "say") else fake.reply)(text)


def prompt_seen(name: str, req: Recorded) -> str:
    body = req.json
    if name == "google":
        return body["contents"][-1]["parts"][0]["text"]
    last = body["messages"][-1]["content"]
    if isinstance(last, list):
        return " ".join(part.get("text", "") for part in last)
    return last


def model_seen(name: str, req: Recorded) -> str:
    return req.path.split("/models/")[1].split(":")[0] if name == "google" else req.json["model"]


def test_every_cloud_backend(tmp_path: Path) -> None:
    """The nine cloud examples in one agent (one subprocess): each resource keeps its seed text, renamed
    to its backend and pointed at its own fake; the target collects every answer."""
    root = agent(tmp_path, target="collect")
    env: dict[str, str] = {}
    fakes: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        for name, (make, env_var, key) in CLOUD.items():
            fake = fakes[name] = stack.enter_context(make())
            script(fake, f"answer from {name}")
            env[f"URL_{name.upper()}"], env[env_var] = fake.url, key
            text = (SEED / f"{name}.yaml").read_text()
            text = text.replace("actionId: answer", f"actionId: {name}")
            text = text.replace("get('FAKE_URL', 'env')", f"get('URL_{name.upper()}', 'env')")
            (root / "resources" / f"{name}.yaml").write_text(text)
        collect = {name: f"get('{name}')" for name in CLOUD}
        (root / "resources" / "collect.yaml").write_text(
            "apiVersion: kdeps.io/v1\nkind: Resource\nmetadata:\n  actionId: collect\n"
            f"  requires: {json.dumps(list(CLOUD))}\nrun:\n  apiResponse:\n    success: true\n"
            f"    response: {json.dumps(collect)}\n")
        code, out, err = once(root, env, q="What is AI?")
        assert code == 0, err
        data = out.get("data", out.get("response"))
        for name, fake in fakes.items():
            assert data[name] == f"answer from {name}"
            (req,) = posts(fake)
            assert model_seen(name, req) == MODELS[name], name
            assert prompt_seen(name, req) == "What is AI?", name
        # contextLength: 4096 in the Anthropic example bounds max_tokens
        assert posts(fakes["anthropic"])[0].json["max_tokens"] == 4096


def test_openai_explicit_key_from_env(tmp_path: Path) -> None:
    with OpenAICompatFake("openai", api_key="sk-explicit-env-7777") as fake:
        code, _out, err = once(agent(tmp_path, "openai-explicit-key"),
                              {"FAKE_URL": fake.url, "OPENAI_API_KEY": "sk-explicit-env-7777"}, q="hi")
        assert code == 0, err
        assert posts(fake)[0].header("authorization") == "Bearer sk-explicit-env-7777"


def test_common_options_key_in_resource_and_json(tmp_path: Path) -> None:
    with OpenAICompatFake("openai", api_key="sk-resource-literal-0001") as fake:
        fake.say('{"answer": "Paris", "confidence": 0.97}')
        code, out, err = once(agent(tmp_path, "common-options"), {"FAKE_URL": fake.url},
                              q="Capital of France?")
        assert code == 0, err
        assert out["data"] == {"answer": "Paris", "confidence": 0.97}
        req = posts(fake)[0]
        assert req.json["response_format"] == {"type": "json_object"}
        sent = json.dumps(req.json["messages"])
        assert "answer" in sent and "confidence" in sent


def test_azure_style_base_url(tmp_path: Path) -> None:
    with OpenAICompatFake("openai", azure=True, api_key="azure-key-5555") as fake:
        fake.say("from azure")
        env = {"FAKE_URL": fake.url, "AZURE_OPENAI_KEY": "azure-key-5555"}
        code, out, err = once(agent(tmp_path, "azure"), env, q="hi")
        assert code == 0, err
        assert out["data"] == "from azure"
        req = posts(fake)[0]
        assert req.path == "/openai/deployments/my-deployment/chat/completions"
        assert "api-version" in req.query and req.header("api-key") == "azure-key-5555"


def test_key_from_session(tmp_path: Path) -> None:
    with OpenAICompatFake("openai", api_key="sk-session-3333") as fake:
        code, _out, err = once(agent(tmp_path, "session-key"), {"FAKE_URL": fake.url},
                              q="hi", key="sk-session-3333")
        assert code == 0, err
        assert posts(fake)[0].header("authorization") == "Bearer sk-session-3333"


def test_missing_key_fails_before_any_call(tmp_path: Path) -> None:
    with OpenAICompatFake("openai") as fake:
        code, out, err = once(agent(tmp_path, "openai"), {"FAKE_URL": fake.url}, q="hi")
        assert code == 1
        assert "OPENAI_API_KEY" in err and "OPENAI_API_KEY" in json.dumps(out)
        assert fake.requests == []


def test_wrong_key_shows_provider_message_not_key(tmp_path: Path) -> None:
    with anthropic_fake.AnthropicFake() as fake:
        code, _out, err = once(agent(tmp_path, "anthropic"),
                              {"FAKE_URL": fake.url, "ANTHROPIC_API_KEY": "sk-ant-wrong-9999"}, q="hi")
        assert code == 1
        assert "401" in err and "anthropic" in err
        assert len(posts(fake)) == 1  # 401 is never retried


def test_mixing_backends(tmp_path: Path) -> None:
    with OpenAICompatFake("groq") as groq, anthropic_fake.AnthropicFake() as claude:
        groq.say("AI is machines that learn.")
        claude.reply("Detailed analysis.")
        env = {"GROQ_URL": groq.url, "ANTHROPIC_URL": claude.url, "GROQ_API_KEY": DEFAULT_KEY,
               "ANTHROPIC_API_KEY": anthropic_fake.KEY}
        code, out, err = once(agent(tmp_path, "mixing-backends", target="deepAnalysis"), env, q="What is AI?")
        assert code == 0, err
        assert out["data"] == "Detailed analysis."
        assert prompt_seen("groq", posts(groq)[0]) == "Summarize: What is AI?"
        assert posts(groq)[0].json["model"] == "llama-3.1-8b-instant"
        sent = prompt_seen("anthropic", posts(claude)[0])
        assert "Based on this summary: AI is machines that learn." in sent
        assert "Provide detailed analysis." in sent


def test_retry_block_honours_retry_after(tmp_path: Path) -> None:
    with OpenAICompatFake("openai") as fake:
        # OpenAI's precise form of the wait (Retry-After's whole seconds are parsed in test_llm_retry.py)
        fake.fail(429, "Rate limit reached", headers={"retry-after-ms": "300", "Retry-After": "1"})
        fake.say("after the wait")
        started = time.monotonic()
        code, out, err = once(agent(tmp_path, "retry"), {"FAKE_URL": fake.url, "OPENAI_API_KEY": DEFAULT_KEY},
                              q="hi")
        assert code == 0, err
        assert out["data"] == "after the wait"
        first, second = posts(fake)
        assert time.monotonic() - started >= 0.3
        assert "retrying in 0.30 s" in err  # the server's wait, not the example's 1 s backoff
        assert second.json == first.json


# -- the calculator-tool example -------------------------------------------------------------------------

def test_tools_calculator_example(ollama: OllamaFake) -> None:
    ollama.call_tools(("calculate", {"expression": "sqrt(144) * 3"}))
    ollama.say('{"answer": 36, "calculation": "sqrt(144) * 3 = 36"}')
    code, out, err = once(ROOT / "examples" / "tools-calculator", {"OLLAMA_URL": ollama.url},
                          q="What is the square root of 144 times 3?")
    assert code == 0, err
    assert out["data"] == {"answer": 36, "calculation": "sqrt(144) * 3 = 36"}
    first, second = posts(ollama)
    assert first.json["tools"][0]["function"]["name"] == "calculate"
    assert first.json["format"] == "json"
    tool_msg = second.json["messages"][-1]
    assert tool_msg["role"] == "tool"
    assert json.loads(tool_msg["content"]) == {"result": 36.0, "expression": "sqrt(144) * 3"}


# -- an uploaded image through the HTTP server -------------------------------------------------------------

async def test_uploaded_image_through_server(tmp_path: Path) -> None:
    root = agent(tmp_path, "openai")
    (root / "resources" / "openai.yaml").write_text(
        (SEED / "openai.yaml").read_text() + "    files:\n      - \"{{ get('file', 'filepath') }}\"\n")
    jpeg = (DATA / "vision" / "dot.jpg").read_bytes()
    with OpenAICompatFake("openai") as fake:
        fake.say("a tiny grey dot")
        env = {"FAKE_URL": fake.url, "OPENAI_API_KEY": DEFAULT_KEY}
        with running(root, env=env) as server:
            async with aiohttp.ClientSession() as session:
                form = aiohttp.FormData()
                form.add_field("q", "What is this?")
                form.add_field("file", jpeg, filename="photo.jpg", content_type="image/jpeg")
                async with session.post(server.url + "/api/v1/chat", data=form) as resp:
                    body = await resp.json()
                    assert resp.status == 200, body
        assert DEFAULT_KEY not in server.stdout + server.stderr
    assert body["data"] == "a tiny grey dot"
    parts = posts(fake)[0].json["messages"][-1]["content"]
    image = next(p for p in parts if p["type"] == "image_url")["image_url"]["url"]
    assert image.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(image.split(",", 1)[1]) == jpeg
