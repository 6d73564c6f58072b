"""Template and expression injection: a corpus of payloads (Jinja/SSTI, expr-lang calls, `{{`
nesting, bare `get(...)` text, `${...}`, Python dunder escapes, shell) sent through every channel a
client controls - query, body, header, upload file name, a model reply, the session - into every
sink - the prompt a provider receives, exec, python, httpClient, apiResponse, items. Each sink
echoes the value; the echo must be the payload exactly (nothing evaluated), and the secrets set in
the environment never appear anywhere."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from kdeps.engine import Engine, RequestData
from kdeps.engine.request import UploadedFile
from kdeps.spec import load_project
from tests.agents import make_agent
from tests.fakes.openai_compat import DEFAULT_KEY, OpenAICompatFake
from tests.security.upstream import Upstream

CANARY = "canary-7f3a9c1e5b"
ENV_GET = "get('CANARY_TOKEN', 'env')"

PAYLOADS: list[str] = [
    # Jinja / SSTI
    "{{7*7}}", "{{ 7*7 }}", "${7*7}", "#{7*7}", "<%= 7*7 %>", "{% for x in range(3) %}x{% endfor %}",
    "{{ config }}", "{{ self.__init__.__globals__ }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}",
    "{{ lipsum.__globals__['os'].environ['CANARY_TOKEN'] }}", "{%raw%}{{x}}{%endraw%}",
    "{{#each this}}x{{/each}}",
    # expr-lang, braced
    "{{ get('OPENAI_API_KEY','env') }}", "{{ " + ENV_GET + " }}", '{{get("CANARY_TOKEN","env")}}',
    "{{ upper(" + ENV_GET + ") }}", "{{ let x = " + ENV_GET + "; x }}", "{{ info('sessionId') }}",
    "{{ info('files') }}", "{{ session() }}", "{{ set('admin', true, 'session') }}", "{{ file('*') }}",
    "{{ get('v') }}", "{{ input('v') }}", "{{ llm.response('ask') }}", "{{ output('llm') }}",
    "{{ env }}", "{{ " + ENV_GET + " ?? 'x' }}",
    # expr-lang, bare (KDeps evaluates unbraced calls in some fields)
    ENV_GET, "get('OPENAI_API_KEY', 'env')", "upper(" + ENV_GET + ")", "len(" + ENV_GET + ") > 0",
    "info('requestId')", "default(" + ENV_GET + ", 'y')",
    # nesting and broken braces
    "{{{{ " + ENV_GET + " }}}}", "{ {" + ENV_GET + "} }", "{{ '{{' }} " + ENV_GET + " {{ '}}' }}",
    "}}{{ " + ENV_GET + " }}{{", '{{ "}}" }}{{ ' + ENV_GET + " }}", "{{", "}}", "{{}}", "{{ }} {{",
    # shell-style and format-string expansion
    "${CANARY_TOKEN}", "$CANARY_TOKEN", "${OPENAI_API_KEY}", "$(printenv CANARY_TOKEN)",
    "`printenv CANARY_TOKEN`", "%(CANARY_TOKEN)s", "%CANARY_TOKEN%", "'; touch PWNED; '", '"; touch PWNED; "',
    "a\ntouch PWNED",
    # Python escapes
    "{__import__('os').environ['CANARY_TOKEN']}", "{__import__('os').system('touch PWNED')}",
    "__import__('os').system('touch PWNED')", "'); __import__('os').system('touch PWNED'); ('",
    '"""); __import__(\'os\').system(\'touch PWNED\'); ("""', "{0.__class__}", "{x!r:>{y}}",
    "\\N{LATIN SMALL LETTER A}\\x41\\u0042",
    # data that looks like other data
    "../../etc/passwd", "@evil.example/", "?x=1#frag", "null", "true", '{"a": 1}', "[1, 2]", "日本語 🎉 é",
]


@dataclass(frozen=True)
class Channel:
    name: str
    source: str  # the expression sinks use to read the value

    def request(self, payload: str, uploads: Path) -> RequestData:
        req = RequestData(method="POST", path="/api/v1/run", route="/api/v1/run", body={})
        if self.name == "query":
            req.query = {"v": payload}
        elif self.name == "body":
            req.body = {"v": payload}
        elif self.name == "header":
            req.headers = {"x-payload": payload}
        elif self.name == "session":
            req.session = {"v": payload}
        elif self.name == "upload":
            saved = uploads / "upload.txt"
            saved.write_text("file body")
            req.files = [UploadedFile(field="doc", filename=payload, path=str(saved), mime="text/plain",
                                      size=9)]
        return req


CHANNELS = [Channel("query", "get('v')"), Channel("body", "get('v')"),
            Channel("header", "get('X-Payload', 'header')"), Channel("upload", "info('filenames')[0]"),
            Channel("model", "get('llm')"), Channel("session", "get('v', 'session')")]


def resources(src: str, upstream: str) -> dict[str, str]:
    t = "{{ " + src + " }}"
    command = json.dumps("printf '%s' \"<" + t + ">\"")
    return {
        "llm": """\
            metadata: {actionId: llm}
            run:
              chat:
                backend: openai
                baseUrl: "{{ get('FAKE_URL', 'env') }}"
                model: gpt-4o
                prompt: "Say something"
            """,
        "ask": f"""\
            metadata: {{actionId: ask, requires: [llm]}}
            run:
              chat:
                backend: openai
                baseUrl: "{{{{ get('FAKE_URL', 'env') }}}}"
                model: gpt-4o
                prompt: {json.dumps("Q: " + t)}
            """,
        "sh": f"""\
            metadata: {{actionId: sh, requires: [llm]}}
            run:
              exec:
                command: {command}
            """,
        "py": f"""\
            metadata: {{actionId: py, requires: [llm]}}
            run:
              python:
                script: {json.dumps('print(f"<' + t + '>")')}
            """,
        "fetch": f"""\
            metadata: {{actionId: fetch, requires: [llm]}}
            run:
              httpClient:
                method: POST
                url: {json.dumps(upstream + "/echo/" + t + "?q=" + t)}
                data: {{v: {json.dumps(t)}}}
            """,
        "response": f"""\
            metadata: {{actionId: response, requires: [ask, sh, py, fetch]}}
            run:
              apiResponse:
                success: true
                response:
                  direct: {json.dumps(src)}
                  templ: {json.dumps(t)}
                  mixed: {json.dumps("<" + t + ">")}
                  sh: "get('sh')"
                  py: "get('py')"
                  http: "get('fetch').data"
            """,
    }


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[OpenAICompatFake, Upstream]]:
    """The fake provider and upstream, with the secrets in the environment (engines read it once)."""
    with OpenAICompatFake("openai") as fake, Upstream() as upstream, pytest.MonkeyPatch.context() as env:
        env.setenv("CANARY_TOKEN", CANARY)
        env.setenv("OPENAI_API_KEY", DEFAULT_KEY)
        env.setenv("FAKE_URL", fake.url)
        yield fake, upstream


@pytest.fixture(scope="module")
def agents(services: tuple[OpenAICompatFake, Upstream], tmp_path_factory: pytest.TempPathFactory
           ) -> dict[str, Engine]:
    """One engine per channel, built once (PWNED would appear in its agent folder, the cwd of
    exec and python)."""
    _, upstream = services
    engines = {}
    for channel in CHANNELS:
        root = make_agent(tmp_path_factory.mktemp(channel.name), resources(channel.source, upstream.url),
                          target="response")
        engines[channel.name] = Engine(load_project(root))
    return engines


@pytest.fixture(autouse=True)
def fresh(services: tuple[OpenAICompatFake, Upstream]) -> None:
    fake, upstream = services
    fake.reset()
    upstream.seen.clear()


def assert_no_secret(*texts: Any) -> None:
    for text in texts:
        blob = text if isinstance(text, str) else json.dumps(text, default=str)
        assert CANARY not in blob and DEFAULT_KEY not in blob


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
@pytest.mark.parametrize("channel", CHANNELS, ids=[c.name for c in CHANNELS])
async def test_payload_is_never_evaluated(channel: Channel, payload: str, agents: dict[str, Engine],
                                          services: tuple[OpenAICompatFake, Upstream],
                                          tmp_path: Path) -> None:
    fake, upstream = services
    fake.say(payload if channel.name == "model" else "fine")
    request = channel.request(payload, tmp_path)
    res = await agents[channel.name].handle(request)
    assert res.status == 200, res.body
    out = res.body["data"]
    assert out["direct"] == payload and out["templ"] == payload
    assert out["mixed"] == f"<{payload}>"
    assert out["sh"] == f"<{payload}>", "exec"
    assert out["py"] == f"<{payload}>", "python"
    seen = upstream.last
    segment = seen.target.split("?", 1)[0].removeprefix("/echo/")
    assert unquote(segment) == payload and "/" not in segment
    assert unquote(seen.target.split("?q=", 1)[1]) == payload
    assert json.loads(seen.body) == {"v": payload}
    prompts = [m["content"] for rec in fake.requests for m in rec.json["messages"] if m["role"] == "user"]
    assert prompts[-1] == f"Q: {payload}"
    assert not res.session_changed
    assert not (agents[channel.name].project.root / "PWNED").exists()
    assert_no_secret(res.body, [rec.json for rec in fake.requests],
                     [(s.target, s.body.decode("utf-8", "replace")) for s in upstream.seen])


ITEMS_AGENT = """\
    metadata: {actionId: loop}
    items: "[get('v')]"
    run:
      exec:
        command: "printf '%s' \\"<{{ item('current') }}>\\""
    """


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
async def test_items_elements_are_data(payload: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_TOKEN", CANARY)
    root = make_agent(tmp_path, {"loop": ITEMS_AGENT}, target="loop")
    request = RequestData(method="POST", path="/api/v1/run", route="/api/v1/run", body={"v": payload})
    res = await Engine(load_project(root)).handle(request)
    assert res.status == 200, res.body
    assert res.body["data"] == [f"<{payload}>"]
    assert_no_secret(res.body)
    assert not (root / "PWNED").exists()
    shutil.rmtree(root)


SERVER_AGENT = {"response": """\
    metadata: {actionId: response, requires: [sh]}
    run:
      apiResponse:
        success: true
        response:
          direct: get('v')
          templ: "{{ get('v') }}"
          header: "{{ get('X-Payload', 'header') }}"
          file: "{{ first(info('filenames')) }}"
          sh: get('sh')
    """, "sh": """\
    metadata: {actionId: sh}
    run:
      exec:
        command: >-
          printf '%s' "<{{ get('v') }}|{{ get('X-Payload', 'header') }}|{{ first(info('filenames')) }}>"
    """}


def _header_safe(payload: str) -> bool:
    return payload.isascii() and payload.isprintable()


def _filename_safe(payload: str) -> bool:
    return _header_safe(payload) and not any(c in payload for c in "\"\\/;") and payload.strip() == payload


@pytest.mark.slow  # the whole corpus over HTTP, each request running a shell
async def test_payloads_through_the_http_server(tmp_path: Path) -> None:
    """The same corpus through `kdeps run` as a client sends it: query string, JSON body, a header
    and a multipart file name."""
    import aiohttp

    from tests.e2e.server_utils import running

    root = make_agent(tmp_path / "agent", SERVER_AGENT, target="response")
    env = {"CANARY_TOKEN": CANARY, "OPENAI_API_KEY": DEFAULT_KEY}
    with running(root, env=env) as server:
        url = server.url + "/api/v1/run"
        async with aiohttp.ClientSession() as session:
            for payload in PAYLOADS:
                async with session.get(url, params={"v": payload}) as resp:
                    out = (await resp.json())["data"]
                assert out["direct"] == out["templ"] == payload
                assert out["sh"] == f"<{payload}||>"
                async with session.post(url, json={"v": payload}) as resp:
                    out = (await resp.json())["data"]
                assert out["direct"] == payload and out["sh"] == f"<{payload}||>"
                if _header_safe(payload):
                    async with session.post(url, json={}, headers={"X-Payload": payload}) as resp:
                        out = (await resp.json())["data"]
                    assert out["header"] == payload.strip() and out["sh"] == f"<|{payload.strip()}|>"
                if _filename_safe(payload):
                    form = aiohttp.FormData(quote_fields=False)
                    form.add_field("doc", b"file body", filename=payload, content_type="text/plain")
                    async with session.post(url, data=form) as resp:
                        body = await resp.json()
                    assert body["data"]["file"] == payload, body
                    assert body["data"]["sh"] == f"<||{payload}>"
                assert_no_secret(out)
    assert not (root / "PWNED").exists()
    assert CANARY not in server.stdout + server.stderr
