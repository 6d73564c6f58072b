"""Tools and vision through the `chat` action on every backend, against the strict fakes.

Each test builds a real agent from `tests/data/chat/{tools,vision}` and runs one request through the
real engine in-process (the e2e suite covers the `kdeps run` subprocess path). The fakes check the
wire shape (they reject what the provider would); the assertions below read back what they received.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kdeps.engine import Engine, RequestData
from kdeps.engine.request import UploadedFile
from kdeps.spec import load_project
from tests.fakes import anthropic as anthropic_fake
from tests.fakes import cohere as cohere_fake
from tests.fakes import google as google_fake
from tests.fakes.base import FakeServer, Recorded, Reply, json_reply
from tests.fakes.ollama import OllamaFake
from tests.fakes.openai_compat import DEFAULT_KEY, OpenAICompatFake

DATA = Path(__file__).resolve().parents[1] / "data" / "chat"
Call = tuple[str, dict[str, Any]]


# -- per-provider knowledge: how to script the fake and read back what it received --------------------

@dataclass(frozen=True)
class Provider:
    name: str
    model: str
    env: str | None
    key: str | None
    make: Callable[[], FakeServer]
    family: str  # openai | anthropic | google | cohere | ollama

    def say(self, fake: Any, text: str) -> None:
        if self.family in ("openai", "ollama"):
            fake.say(text)
        else:
            fake.reply(text)

    def call(self, fake: Any, *calls: Call) -> None:
        if self.family in ("openai", "ollama"):
            fake.call_tools(*calls)
        else:
            fake.reply("", list(calls))


def _openai(name: str, model: str) -> Provider:
    env_var = f"{name.upper()}_API_KEY"
    return Provider(name, model, env_var, DEFAULT_KEY, lambda: OpenAICompatFake(name), "openai")


PROVIDERS = [
    Provider("ollama", "llama3.2:1b", None, None, OllamaFake, "ollama"),
    _openai("openai", "gpt-4o"),
    _openai("mistral", "mistral-large-latest"),
    _openai("together", "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"),
    _openai("perplexity", "sonar-pro"),
    _openai("groq", "llama-3.1-70b-versatile"),
    _openai("deepseek", "deepseek-chat"),
    Provider("anthropic", "claude-3-5-sonnet-20241022", "ANTHROPIC_API_KEY", anthropic_fake.KEY,
             anthropic_fake.AnthropicFake, "anthropic"),
    Provider("google", "gemini-1.5-pro", "GOOGLE_API_KEY", google_fake.KEY, google_fake.GeminiFake, "google"),
    Provider("cohere", "command-r-plus", "COHERE_API_KEY", cohere_fake.KEY, cohere_fake.CohereFake, "cohere"),
]
BY_NAME = {p.name: p for p in PROVIDERS}


def declared_tools(p: Provider, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Tool name → its JSON Schema, as sent."""
    tools = body.get("tools") or []
    if p.family == "anthropic":
        return {t["name"]: t["input_schema"] for t in tools}
    if p.family == "google":
        return {d["name"]: d.get("parameters", {}) for t in tools
                for d in t.get("functionDeclarations") or t.get("function_declarations") or []}
    return {t["function"]["name"]: t["function"].get("parameters", {}) for t in tools}


def tool_results(p: Provider, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tool result sent back to the model: {ref, text, error} in wire order."""
    out: list[dict[str, Any]] = []
    if p.family == "anthropic":
        for msg in body["messages"]:
            for block in msg["content"] if isinstance(msg["content"], list) else []:
                if block.get("type") == "tool_result":
                    assert msg["role"] == "user"
                    out.append({"ref": block["tool_use_id"], "text": json.dumps(block.get("content")),
                                "error": bool(block.get("is_error"))})
    elif p.family == "google":
        for content in body["contents"]:
            for part in content["parts"]:
                fr = part.get("functionResponse") or part.get("function_response")
                if fr:
                    assert isinstance(fr["response"], dict)
                    out.append({"ref": fr["name"], "text": json.dumps(fr["response"]),
                                "error": "error" in fr["response"]})
    else:
        for msg in body["messages"]:
            if msg["role"] == "tool":
                ref = msg.get("tool_call_id") or msg.get("tool_name") or msg.get("name")
                out.append({"ref": ref, "text": json.dumps(msg.get("content")), "error": None})
    return out


def sent_images(p: Provider, body: dict[str, Any]) -> list[tuple[str | None, bytes]]:
    """(MIME, bytes) of every image in the request; Ollama sends no MIME."""
    found: list[tuple[str | None, bytes]] = []
    if p.family == "ollama":
        for msg in body["messages"]:
            found += [(None, base64.b64decode(i)) for i in msg.get("images") or []]
    elif p.family == "anthropic":
        for msg in body["messages"]:
            for block in msg["content"] if isinstance(msg["content"], list) else []:
                if block.get("type") == "image":
                    found.append((block["source"]["media_type"], base64.b64decode(block["source"]["data"])))
    elif p.family == "google":
        for content in body["contents"]:
            for part in content["parts"]:
                inline = part.get("inlineData") or part.get("inline_data")
                if inline:
                    mime = inline.get("mimeType") or inline.get("mime_type")
                    found.append((mime, base64.b64decode(inline["data"])))
    else:
        for msg in body["messages"]:
            for part in msg["content"] if isinstance(msg.get("content"), list) else []:
                if part.get("type") == "image_url":
                    head, data = part["image_url"]["url"].split(",", 1)
                    found.append((head.removeprefix("data:").removesuffix(";base64"), base64.b64decode(data)))
    return found


# -- fixtures ------------------------------------------------------------------------------------------

class ItemServer(FakeServer):
    """The local API behind the httpClient tool."""

    def default(self, rec: Recorded) -> Reply:
        return json_reply({"item": rec.path.rsplit("/", 1)[-1], "name": "blue widget", "stock": 17})


@pytest.fixture(scope="module")
def items() -> Iterator[ItemServer]:
    with ItemServer() as server:
        yield server


@pytest.fixture(params=[p.name for p in PROVIDERS])
def provider(request: pytest.FixtureRequest) -> Provider:
    return BY_NAME[request.param]


@pytest.fixture
def fake(provider: Provider, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with provider.make() as server:
        monkeypatch.setenv("FAKE_URL", server.url)
        if provider.env:
            monkeypatch.setenv(provider.env, provider.key or "")
        yield server


def build(root: Path, kind: str, p: Provider) -> Path:
    (root / "resources").mkdir(parents=True)
    workflow = (DATA / "workflow.yaml").read_text().replace("__TARGET__", "answer")
    (root / "workflow.yaml").write_text(workflow)
    for src in (DATA / kind).glob("*.yaml"):
        text = src.read_text().replace("__BACKEND__", p.name).replace("__MODEL__", p.model)
        (root / "resources" / src.name).write_text(text)
    if kind == "vision":
        shutil.copytree(DATA / "vision", root / "images", ignore=shutil.ignore_patterns("*.yaml"))
    return root


async def ask(root: Path, files: list[UploadedFile] | None = None, **inputs: Any):
    request = RequestData(method="POST", path="/api/v1/chat", route="/api/v1/chat", body=inputs,
                          headers={"content-type": "application/json"}, files=files or [])
    return await Engine(load_project(root)).handle(request)


def chat_requests(fake: FakeServer) -> list[Recorded]:
    return [r for r in fake.requests if r.method == "POST" and isinstance(r.json, dict)]


# -- tools ---------------------------------------------------------------------------------------------

async def test_single_tool_call_runs_python_resource(tmp_path: Path, provider: Provider, fake: Any,
                                                     items: ItemServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKUP_URL", items.url)
    provider.call(fake, ("calculate", {"expression": "6 * 7"}))
    provider.say(fake, "The answer is 42.")
    res = await ask(build(tmp_path, "tools", provider), q="What is 6 times 7?")
    assert res.status == 200, res.body
    assert res.body["data"] == "The answer is 42."
    first, second = chat_requests(fake)
    schemas = declared_tools(provider, first.json)
    assert set(schemas) == {"calculate", "lookup", "explode"}
    lookup = schemas["lookup"]
    props = lookup.get("properties", {})
    assert set(props) == {"id", "verbose"}
    assert lookup.get("required") == ["id"]
    results = tool_results(provider, second.json)
    assert len(results) == 1
    assert "42" in results[0]["text"] and "6 * 7" in results[0]["text"]
    assert not results[0]["error"]


async def test_parallel_calls_and_http_tool(tmp_path: Path, provider: Provider, fake: Any,
                                            items: ItemServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKUP_URL", items.url)
    items.reset()
    provider.call(fake, ("calculate", {"expression": "17 * 3"}), ("lookup", {"id": 9, "verbose": True}))
    provider.say(fake, "17 blue widgets, 51 in three boxes.")
    res = await ask(build(tmp_path, "tools", provider), q="How many widgets?")
    assert res.status == 200, res.body
    assert res.body["data"] == "17 blue widgets, 51 in three boxes."
    assert [r.path for r in items.requests] == ["/items/9"]
    results = tool_results(provider, chat_requests(fake)[1].json)
    assert len(results) == 2
    texts = " ".join(r["text"] for r in results)
    assert "51" in texts and "blue widget" in texts


async def test_failing_tool_is_reported_to_the_model(tmp_path: Path, provider: Provider, fake: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    provider.call(fake, ("explode", {"reason": "testing"}))
    provider.say(fake, "Sorry, the tool failed.")
    res = await ask(build(tmp_path, "tools", provider), q="Blow up")
    assert res.status == 200, res.body
    assert res.body["data"] == "Sorry, the tool failed."
    (result,) = tool_results(provider, chat_requests(fake)[1].json)
    assert "explode" in result["text"] and "failed" in result["text"]
    if result["error"] is not None:
        assert result["error"] is True


async def test_round_limit_is_a_clear_error(tmp_path: Path, provider: Provider, fake: Any) -> None:
    for _ in range(3):  # maxToolRounds: 2 → the third request for tools is refused
        provider.call(fake, ("calculate", {"expression": "1 + 1"}))
    res = await ask(build(tmp_path, "tools", provider), q="loop forever")
    assert res.status == 502
    message = res.body["error"]["message"]
    assert "2 tool rounds" in message and "calculate" in message
    assert len(chat_requests(fake)) == 3


# -- vision --------------------------------------------------------------------------------------------

def _expect_mime(p: Provider, mime: str | None, expected: str) -> None:
    if p.family != "ollama":
        assert mime == expected


async def test_png_and_jpeg_from_disk(tmp_path: Path, provider: Provider, fake: Any) -> None:
    root = build(tmp_path, "vision", provider)
    resources = root / "resources" / "answer.yaml"
    resources.write_text(resources.read_text().replace(
        '      - "{{ get(\'image\') }}"', '      - "{{ get(\'image\') }}"\n      - "./images/dot.jpg"'))
    if provider.name == "deepseek":
        res = await ask(root, image="images/red.png")
        assert res.status == 400
        assert "does not accept images" in res.body["error"]["message"]
        assert chat_requests(fake) == []
        return
    provider.say(fake, "A red pixel and a grey dot.")
    res = await ask(root, image="images/red.png")
    assert res.status == 200, res.body
    assert res.body["data"] == "A red pixel and a grey dot."
    images = sent_images(provider, fake.last.json)
    assert [data for _, data in images] == [(DATA / "vision/red.png").read_bytes(),
                                            (DATA / "vision/dot.jpg").read_bytes()]
    _expect_mime(provider, images[0][0], "image/png")
    _expect_mime(provider, images[1][0], "image/jpeg")


async def test_uploaded_file(tmp_path: Path, provider: Provider, fake: Any) -> None:
    root = build(tmp_path, "vision", provider)
    upload_dir = tmp_path / "upload"
    upload_dir.mkdir()
    saved = upload_dir / "a1b2c3"  # the server saves uploads under a random name
    shutil.copy(DATA / "vision/dot.jpg", saved)
    upload = UploadedFile(field="file", filename="holiday.jpg", path=str(saved), mime="image/jpeg",
                          size=saved.stat().st_size)
    if provider.name == "deepseek":
        res = await ask(root, files=[upload], image="holiday.jpg")
        assert res.status == 400 and "deepseek" in res.body["error"]["message"]
        assert chat_requests(fake) == []
        return
    provider.say(fake, "A holiday snap.")
    res = await ask(root, files=[upload], image="holiday.jpg")
    assert res.status == 200, res.body
    images = sent_images(provider, fake.last.json)
    assert [data for _, data in images] == [saved.read_bytes()]
    _expect_mime(provider, images[0][0], "image/jpeg")


@pytest.mark.parametrize("image, problem", [
    ("images/missing.png", "not found"),
    ("images/notes.txt", "not a supported image"),
])
async def test_bad_files_fail_before_sending(tmp_path: Path, image: str, problem: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    p = BY_NAME["openai"]
    with p.make() as fake:
        monkeypatch.setenv("FAKE_URL", fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", DEFAULT_KEY)
        res = await ask(build(tmp_path, "vision", p), image=image)
        assert res.status == 400
        message = res.body["error"]["message"]
        assert image in message and problem in message
        assert fake.requests == []
