"""`httpClient` as KDeps documents it: the response object (`statusCode`, `status`, `headers`, `body`,
`data`) next to the existing accessors, a working `cache` (ttl, key), `tls` options against a local
HTTPS server with a self-signed certificate, and `proxy`."""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdeps.actions import http_client
from tests.agents import make_agent, run_agent
from tests.security.upstream import Upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """An empty response cache and a clock the test moves by hand."""
    now = [1000.0]
    monkeypatch.setattr(http_client, "_clock", lambda: now[0])
    http_client._cache.clear()
    yield now
    http_client._cache.clear()


def agent(tmp_path: Path, http: str, response: dict[str, str] | None = None) -> Path:
    resources = {"fetch": "metadata: {actionId: fetch}\nrun:\n  httpClient:\n" + http}
    target = "fetch"
    if response is not None:
        lines = "".join(f"\n      {k}: \"{v}\"" for k, v in response.items())
        resources["response"] = ("metadata: {actionId: response, requires: [fetch]}\nrun:\n  apiResponse:\n"
                                 "    success: true\n    response:" + lines + "\n")
        target = "response"
    return make_agent(tmp_path, resources, target=target)


# -- the response object -------------------------------------------------------------------------------
async def test_response_object_and_accessors(tmp_path: Path, upstream: Upstream) -> None:
    root = agent(tmp_path, f'    url: "{upstream.url}/items"\n', {
        "status": "get('fetch').statusCode", "line": "get('fetch').status",
        "server": "get('fetch').headers['X-Served-By']", "raw": "get('fetch').body",
        "method": "get('fetch').data.method", "direct": "get('fetch').method",
        "accessorStatus": "http.statusCode('fetch')", "accessorBody": "http.responseBody('fetch').rawPath",
        "accessorHeader": "http.responseHeader('fetch', 'x-served-by')"})
    res = await run_agent(root)
    assert res.status == 200, res.body
    out = res.body["data"]
    assert out["status"] == 200 and out["line"] == "200 OK"
    assert out["server"] == "upstream" and out["accessorHeader"] == "upstream"
    assert isinstance(out["raw"], str) and '"rawPath": "/items"' in out["raw"]
    assert out["method"] == "GET" and out["direct"] == "GET"
    assert out["accessorStatus"] == 200 and out["accessorBody"] == "/items"


async def test_text_answer_has_body_and_null_data(tmp_path: Path, upstream: Upstream) -> None:
    root = agent(tmp_path, f'    url: "{upstream.url}/text"\n')
    res = await run_agent(root)
    out = res.body["data"]
    assert out["body"] == "plain words" and out["data"] is None and out["statusCode"] == 200
    assert out["headers"]["X-Kind"] == "text"


# -- cache -------------------------------------------------------------------------------------------
async def test_cache_serves_within_ttl_and_refetches_after(tmp_path: Path, upstream: Upstream,
                                                           fresh_cache: list[float]) -> None:
    root = agent(tmp_path, f'    url: "{upstream.url}/count"\n    cache: {{ttl: 5m}}\n')
    first = await run_agent(root)
    second = await run_agent(root)
    assert first.body["data"]["data"] == {"count": 1}
    assert second.body["data"]["data"] == {"count": 1}
    assert upstream.count == 1
    fresh_cache[0] += 301
    third = await run_agent(root)
    assert third.body["data"]["data"] == {"count": 2} and upstream.count == 2


async def test_cache_key_defaults_to_method_url_and_body(tmp_path: Path, upstream: Upstream) -> None:
    root = agent(tmp_path, f"""\
    method: POST
    url: "{upstream.url}/count?q={{{{ get('q') }}}}"
    data: {{n: "{{{{ get('n') }}}}"}}
    cache: {{ttl: 1m}}
""")
    for q, n in [("a", "1"), ("a", "1"), ("b", "1"), ("a", "2"), ("b", "1")]:
        await run_agent(root, {"q": q, "n": n})
    assert upstream.count == 3


async def test_cache_custom_key(tmp_path: Path, upstream: Upstream) -> None:
    root = agent(tmp_path, f"""\
    url: "{upstream.url}/count?q={{{{ get('q') }}}}"
    cache: {{ttl: 1m, key: "static"}}
""")
    await run_agent(root, {"q": "a"})
    res = await run_agent(root, {"q": "b"})
    assert res.body["data"]["data"] == {"count": 1} and upstream.count == 1


async def test_no_cache_block_means_no_cache(tmp_path: Path, upstream: Upstream) -> None:
    root = agent(tmp_path, f'    url: "{upstream.url}/count"\n')
    await run_agent(root)
    await run_agent(root)
    assert upstream.count == 2


# -- TLS -----------------------------------------------------------------------------------------------
def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with the openssl command line."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed (needed to make a test certificate)")
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_upstream(tmp_path: Path) -> Iterator[tuple[Upstream, Path, Path, Path]]:
    certs = tmp_path / "certs"
    certs.mkdir()
    server_cert, server_key = self_signed(certs, "server")
    client_cert, client_key = self_signed(certs, "client")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_cert, server_key)
    context.load_verify_locations(client_cert)
    context.verify_mode = ssl.CERT_OPTIONAL
    with Upstream(context) as server:
        yield server, server_cert, client_cert, client_key


async def test_self_signed_is_refused_by_default(tmp_path: Path, tls_upstream) -> None:
    server, *_ = tls_upstream
    root = agent(tmp_path / "a", f'    url: "{server.url}/x"\n')
    res = await run_agent(root)
    assert res.status == 502 and "TLS" in res.body["error"]["message"]
    assert not server.seen


async def test_insecure_skip_verify(tmp_path: Path, tls_upstream) -> None:
    server, *_ = tls_upstream
    root = agent(tmp_path / "a", f'    url: "{server.url}/x"\n    tls: {{insecureSkipVerify: true}}\n')
    res = await run_agent(root)
    assert res.status == 200, res.body
    assert res.body["data"]["data"]["rawPath"] == "/x"


async def test_ca_file_and_client_certificate(tmp_path: Path, tls_upstream) -> None:
    server, server_cert, client_cert, client_key = tls_upstream
    root = agent(tmp_path / "a", f"""\
    url: "{server.url}/x"
    tls:
      caFile: "{server_cert}"
      certFile: "{client_cert}"
      keyFile: "{client_key}"
""")
    res = await run_agent(root)
    assert res.status == 200, res.body
    assert res.body["data"]["data"]["client"] is True  # the server saw our client certificate


async def test_ca_file_alone_trusts_the_server(tmp_path: Path, tls_upstream) -> None:
    server, server_cert, *_ = tls_upstream
    root = agent(tmp_path / "a", f'    url: "{server.url}/x"\n    tls: {{caFile: "{server_cert}"}}\n')
    res = await run_agent(root)
    assert res.status == 200, res.body
    assert res.body["data"]["data"]["client"] is False


# -- proxy ---------------------------------------------------------------------------------------------
async def test_proxy_carries_the_request(tmp_path: Path) -> None:
    with Upstream(proxy=True) as proxy:
        root = agent(tmp_path, f"""\
    url: "http://api.example.invalid/v1/items?id=7"
    proxy: "http://scott:tiger@127.0.0.1:{proxy.port}"
""")
        res = await run_agent(root)
    assert res.status == 200, res.body
    data = res.body["data"]["data"]
    assert data["via"] == "proxy"
    assert data["target"] == "http://api.example.invalid/v1/items?id=7"
    assert data["proxyAuth"] == "Basic " + base64.b64encode(b"scott:tiger").decode()
