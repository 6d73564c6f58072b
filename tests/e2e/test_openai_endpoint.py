"""The OpenAI-compatible endpoint of `kdeps run --openai`, driven with the official `openai` SDK.
The workflow's chat resource streams from the OpenAI-compatible fake."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import openai
import pytest
import yaml

from tests.e2e.server_utils import running
from tests.e2e.streaming import chat_agent_running, copy_chat_agent
from tests.fakes.openai_compat import DEFAULT_KEY, OpenAICompatFake

MODEL = "stream-agent"
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi!"},
    {"role": "user", "content": "What is streaming?"},
]


@pytest.fixture(scope="module")
def fake() -> Iterator[OpenAICompatFake]:
    with OpenAICompatFake("openai") as server:
        yield server


@pytest.fixture(scope="module")
def kdeps(fake, tmp_path_factory):
    with chat_agent_running(fake, tmp_path_factory.mktemp("openai"), "--openai") as server:
        yield server


@pytest.fixture
def llm(fake):
    fake.reset()
    yield fake
    fake.reset()


@pytest.fixture
def client(kdeps) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{kdeps.url}/v1", api_key="x", max_retries=0, timeout=20) as c:
        yield c


def test_models_lists_the_workflow(client):
    assert [m.id for m in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).owned_by == "kdeps"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_chat_completion(client, llm):
    llm.say("Streaming sends text as it is made.", usage=(12, 8))
    completion = client.chat.completions.create(model=MODEL, messages=CONVERSATION)
    assert completion.object == "chat.completion" and completion.model == MODEL
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    assert choice.message.content == "Streaming sends text as it is made."
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 8)
    # q is the last user message; get('messages') and get('model') see the request
    assert llm.last.json["messages"][-1]["content"] == f"What is streaming? (4 messages for {MODEL})"


def test_chat_completion_streamed(client, llm):
    text = "Chunks arrive one after another until the end."
    llm.say(text, pieces=4)
    chunks = list(client.chat.completions.create(model=MODEL, messages=CONVERSATION, stream=True,
                                                 stream_options={"include_usage": True}))
    assert llm.last.json["stream"] is True
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)
    assert len({c.id for c in chunks}) == 1
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(contents) >= 3  # the fake's pieces came through as separate chunks
    assert "".join(contents) == text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_client_conversation_and_parameters_reach_the_model(client, llm):
    llm.say("one two three four five six seven", usage=(30, 7))
    completion = client.chat.completions.create(model="any-model-name", messages=CONVERSATION, max_tokens=3,
                                                temperature=0.25, top_p=0.5, stop=["END"])
    sent = llm.last.json
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["messages"][0]["content"] == "Be brief." and sent["messages"][2]["content"] == "Hi!"
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"], sent["stop"]) == (3, 0.25, 0.5, ["END"])
    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("one two three", "length")  # the upstream's
    assert completion.usage is not None and completion.usage.completion_tokens == 3


def test_streamed_finish_reason_is_the_upstream_one(client, llm):
    llm.say("one two three four five", pieces=5)
    chunks = list(client.chat.completions.create(model=MODEL, messages=CONVERSATION, max_tokens=2,
                                                 stream=True))
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]


async def test_stream_wire_format_ends_with_done(kdeps, llm):
    llm.say("raw", pieces=1)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with aiohttp.ClientSession() as http, http.post(f"{kdeps.url}/v1/chat/completions", json=body) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        text = await r.text()
    lines = [line for line in text.splitlines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)


def test_errors_are_openai_error_objects(client, llm):
    with pytest.raises(openai.BadRequestError) as unsupported:
        client.chat.completions.create(model=MODEL, messages=CONVERSATION, n=2, logprobs=True)
    assert unsupported.value.code == "unsupported_parameter" and unsupported.value.param == "n"
    assert "n, logprobs" in unsupported.value.body["message"]
    # the workflow's preflight check refuses an empty question: 400, before any byte of a stream
    empty = [{"role": "user", "content": ""}]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=empty)
    assert refused.value.body["message"] == "q is required"
    assert refused.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=empty, stream=True)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "system", "content": "no user"}])
    assert llm.requests == []


def test_upstream_failure(client, llm):
    llm.fail(401, "Incorrect API key provided.")
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model=MODEL, messages=CONVERSATION)
    assert failed.value.status_code >= 500
    assert failed.value.body["type"] == "server_error" and failed.value.body["resource"] == "llm"


def test_stream_cut_midway_raises_in_the_sdk(client, llm):
    llm.say("this answer is cut short somewhere", pieces=4, cut_after=3)
    stream = client.chat.completions.create(model=MODEL, messages=CONVERSATION, stream=True)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(received)  # some text made it before the failure


@pytest.fixture(scope="module")
def locked(fake, tmp_path_factory):
    """The same agent with `openaiCompat: true` in workflow.yaml (no flag) and a bearer token."""
    agent = copy_chat_agent(tmp_path_factory.mktemp("locked"))
    workflow = yaml.safe_load((agent / "workflow.yaml").read_text())
    workflow["settings"]["openaiCompat"] = True
    workflow["settings"]["apiServer"]["authToken"] = "{{ get('AGENT_TOKEN', 'env') }}"
    (agent / "workflow.yaml").write_text(yaml.safe_dump(workflow, sort_keys=False))
    env = {"FAKE_URL": fake.url, "OPENAI_API_KEY": DEFAULT_KEY, "AGENT_TOKEN": "secret-token"}
    with running(agent, env=env) as server:
        yield server


def test_workflow_setting_and_bearer_token(locked, llm):
    with openai.OpenAI(base_url=f"{locked.url}/v1", api_key="wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as denied:
            bad.models.list()
        assert denied.value.code == "invalid_api_key"
    llm.say("let in", pieces=2)
    with openai.OpenAI(base_url=f"{locked.url}/v1", api_key="secret-token", max_retries=0) as good:
        text = "".join(c.choices[0].delta.content or "" for c in good.chat.completions.create(
            model=MODEL, messages=CONVERSATION, stream=True) if c.choices)
    assert text == "let in"
