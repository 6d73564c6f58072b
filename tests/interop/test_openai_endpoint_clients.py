"""`kdeps run --openai` driven by real clients (the official `openai` SDK and `litellm`), its chat
resource answered by a real OpenAI-compatible server (llama_cpp.server). Shapes, token limits, finish
reasons and token counts are asserted, never what the 135M model knows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.e2e.server_utils import KdepsServer, running
from tests.interop.conftest import ALIAS, LlamaServer

pytestmark = pytest.mark.local_model
MODEL = "interop-agent"
ASK = [{"role": "user", "content": "Write a long story about the sea."}]

WORKFLOW = f"""\
apiVersion: kdeps.io/v1
kind: Workflow
metadata:
  name: {MODEL}
  version: "1.0.0"
  targetActionId: response
settings:
  apiServerMode: true
  apiServer:
    hostIp: "127.0.0.1"
    portNum: 3000
    routes:
      - path: /api/v1/chat
        methods: [POST]
"""
LLM = f"""\
apiVersion: kdeps.io/v1
kind: Resource
metadata:
  actionId: llm
run:
  chat:
    backend: openai
    baseUrl: "{{{{ get('LLAMA_URL', 'env') }}}}"
    model: {ALIAS}
    prompt: "{{{{ get('q') }}}}"
    timeoutDuration: 60s
"""
RESPONSE = """\
apiVersion: kdeps.io/v1
kind: Resource
metadata:
  actionId: response
  requires: [llm]
run:
  apiResponse:
    success: true
    response: "{{ get('llm') }}"
"""


@pytest.fixture(scope="module")
def kdeps(llama_server: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KdepsServer]:
    agent = tmp_path_factory.mktemp("interop") / "agent"
    (agent / "resources").mkdir(parents=True)
    (agent / "workflow.yaml").write_text(WORKFLOW)
    (agent / "resources" / "llm.yaml").write_text(LLM)
    (agent / "resources" / "response.yaml").write_text(RESPONSE)
    env = {"LLAMA_URL": f"{llama_server.url}/v1", "OPENAI_API_KEY": "sk-no-key-needed"}
    with running(agent, "--openai", env=env) as server:
        yield server


@pytest.fixture(scope="module")
def sdk(kdeps: KdepsServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{kdeps.url}/v1", api_key="x", max_retries=0, timeout=90) as c:
        yield c


def test_banner_lists_the_openai_routes(kdeps: KdepsServer) -> None:
    assert "POST /v1/chat/completions" in kdeps.stdout and "GET /v1/models" in kdeps.stdout


def test_sdk_plain_with_a_foreign_model_name(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi."}],
                                             max_tokens=24)
    choice = completion.choices[0]
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None and 0 < completion.usage.completion_tokens <= 24
    assert [m.id for m in sdk.models.list()] == [MODEL]


def test_sdk_max_tokens(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(model=MODEL, messages=ASK, max_tokens=3)  # type: ignore[arg-type]
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens <= 3


def test_sdk_system_message_reaches_the_model(sdk: openai.OpenAI) -> None:
    system = {"role": "system", "content": "You are a sailor who loves long tales. " * 12}
    bare = sdk.chat.completions.create(model=MODEL, messages=ASK, max_tokens=1)  # type: ignore[arg-type]
    told = sdk.chat.completions.create(model=MODEL, messages=[system, *ASK], max_tokens=1)  # type: ignore[list-item]
    assert bare.usage is not None and told.usage is not None
    assert told.usage.prompt_tokens - bare.usage.prompt_tokens >= 60  # ~8 tokens x 12 reached the server


def test_sdk_streaming(sdk: openai.OpenAI) -> None:
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=ASK, max_tokens=4, stream=True,  # type: ignore[arg-type]
                                              stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens <= 4


def test_sdk_unsupported_parameter_is_a_400(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model=MODEL, messages=ASK, n=2)  # type: ignore[arg-type]
    assert refused.value.param == "n"


@pytest.fixture(scope="module")
def litellm() -> Iterator[Any]:
    """Imported once for the module (a few seconds), as set-up."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of its price list
        yield pytest.importorskip("litellm")


@pytest.mark.filterwarnings("ignore::UserWarning:pydantic")  # litellm's own types
def test_litellm_plain_and_max_tokens(kdeps: KdepsServer, litellm: Any) -> None:
    answer = litellm.completion(model="openai/gpt-4o", api_base=f"{kdeps.url}/v1", api_key="x",
                                messages=ASK, max_tokens=3, timeout=90)
    assert isinstance(answer.choices[0].message.content, str)
    assert answer.choices[0].finish_reason == "length" and answer.usage.completion_tokens <= 3


@pytest.mark.filterwarnings("ignore::UserWarning:pydantic")
def test_litellm_streaming_with_a_system_message(kdeps: KdepsServer, litellm: Any) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *ASK]
    chunks = list(litellm.completion(model="openai/gpt-4o", api_base=f"{kdeps.url}/v1", api_key="x",
                                     messages=messages, max_tokens=4, stream=True, timeout=90))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    assert any(c.choices and c.choices[0].finish_reason == "length" for c in chunks)
