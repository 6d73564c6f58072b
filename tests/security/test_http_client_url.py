"""`httpClient` URLs: a value spliced into the path is one percent-encoded segment and into the
query one encoded value; request data cannot change scheme, host, port or the author's path.
Credential headers never follow a redirect to another origin; errors and logs never show URL
credentials or query values."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.agents import make_agent, run_agent
from tests.security.upstream import Upstream

SEGMENT_PAYLOADS = ["../../admin?x#", "@other-host/", "..", ".", "%2e%2e/admin", "a/b", "?q=1", "#frag",
                    "héllo wörld", "x y+z", "\\..\\admin", "//evil.example/x", ";jsessionid=1", ""]


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture
def other() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


def fetch_agent(tmp_path: Path, http: str) -> Path:
    """A `fetch` httpClient resource (`http` is the YAML under httpClient:, indented 4) as target."""
    return make_agent(tmp_path, {"fetch": "metadata: {actionId: fetch}\nrun:\n  httpClient:\n" + http},
                      target="fetch")


@pytest.mark.parametrize("payload", SEGMENT_PAYLOADS, ids=range(len(SEGMENT_PAYLOADS)))
async def test_path_value_is_one_segment(tmp_path: Path, upstream: Upstream, payload: str) -> None:
    root = fetch_agent(tmp_path, f"""\
    url: "{upstream.url}/v1/items/{{{{ get('id') }}}}/detail"
""")
    res = await run_agent(root, {"id": payload})
    assert res.status == 200, res.body
    encoded = quote(payload, safe="")
    if payload in (".", ".."):
        encoded = payload.replace(".", "%2E")
    assert upstream.last.target == f"/v1/items/{encoded}/detail"
    assert upstream.last.host == f"127.0.0.1:{upstream.port}"


async def test_query_value_stays_one_value(tmp_path: Path, upstream: Upstream) -> None:
    root = fetch_agent(tmp_path, f"""\
    url: "{upstream.url}/search?q={{{{ get('q') }}}}&lang=en"
""")
    res = await run_agent(root, {"q": "x&lang=fr#top"})
    assert res.status == 200, res.body
    assert upstream.last.target == "/search?q=x%26lang%3Dfr%23top&lang=en"


async def test_value_after_the_host_cannot_change_it(tmp_path: Path, upstream: Upstream,
                                                     other: Upstream) -> None:
    root = fetch_agent(tmp_path, f"""\
    url: "http://127.0.0.1:{upstream.port}{{{{ get('p') }}}}"
""")
    res = await run_agent(root, {"p": f"@127.0.0.1:{other.port}/steal"})
    assert res.status == 400, res.body
    assert not other.seen and not upstream.seen


async def test_path_value_cannot_reach_another_host(tmp_path: Path, upstream: Upstream,
                                                    other: Upstream) -> None:
    root = fetch_agent(tmp_path, f"""\
    url: "{upstream.url}/{{{{ get('p') }}}}"
""")
    res = await run_agent(root, {"p": f"/127.0.0.1:{other.port}/x"})
    assert res.status == 200, res.body
    assert not other.seen
    assert upstream.last.target == "/" + quote(f"/127.0.0.1:{other.port}/x", safe="")


CREDENTIALS = """\
    headers:
      Cookie: "session=author-cookie"
      Proxy-Authorization: "Basic cHJveHk6cHc="
    auth: {type: api_key, key: X-Upstream-Key, value: "author-key"}
"""


async def test_credentials_dropped_on_cross_origin_redirect(tmp_path: Path, upstream: Upstream,
                                                             other: Upstream) -> None:
    root = fetch_agent(tmp_path, f"""\
    url: "{upstream.url}/redirect?to={other.url}/landing"
""" + CREDENTIALS)
    res = await run_agent(root)
    assert res.status == 200, res.body
    assert other.last.target == "/landing"
    for name in ("cookie", "proxy-authorization", "x-upstream-key", "authorization"):
        assert name not in other.last.headers, name
    assert upstream.last.headers["x-upstream-key"] == "author-key"
    bearer = fetch_agent(tmp_path / "bearer", f"""\
    url: "{upstream.url}/redirect?to={other.url}/landing&status=307"
    auth: {{type: bearer, token: "author-token"}}
""")
    res = await run_agent(bearer)
    assert res.status == 200, res.body
    assert "authorization" not in other.last.headers


async def test_credentials_kept_on_same_origin_redirect(tmp_path: Path, upstream: Upstream) -> None:
    root = fetch_agent(tmp_path, f"""\
    url: "{upstream.url}/redirect?to=/landing"
""" + CREDENTIALS)
    res = await run_agent(root)
    assert res.status == 200, res.body
    assert upstream.last.target == "/landing"
    assert upstream.last.headers["x-upstream-key"] == "author-key"
    assert upstream.last.headers["cookie"] == "session=author-cookie"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_unreachable_upstream_error_hides_url_secrets(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    port = closed_port()
    root = fetch_agent(tmp_path, f"""\
    url: "http://robot:hunter2pw@127.0.0.1:{port}/v1/data?user=ann&key=sk-topsecret-123"
""")
    with caplog.at_level(logging.DEBUG):
        res = await run_agent(root)
    assert res.status == 502, res.body
    text = str(res.body)
    for secret in ("sk-topsecret-123", "hunter2pw", "robot", "127.0.0.1", str(port)):
        assert secret not in text, secret
    assert "unreachable" in text
    logs = caplog.text
    assert "sk-topsecret-123" not in logs and "hunter2pw" not in logs
    assert f"127.0.0.1:{port}/v1/data?user=***&key=***" in logs


async def test_header_value_cannot_add_headers(tmp_path: Path, upstream: Upstream) -> None:
    root = fetch_agent(tmp_path, f"""\
    url: "{upstream.url}/x"
    headers:
      X-Name: "{{{{ get('n') }}}}"
""")
    res = await run_agent(root, {"n": "a\r\nX-Evil: 1"})
    assert res.status == 400, res.body
    assert "line break" in res.body["error"]["message"]
    assert not upstream.seen
