"""`settings.webServer` served by `kdeps run`: static folders, reverse proxies to a local app (HTTP,
streaming, websockets), app commands, a separate port, and agents that are a web server only."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.server_utils import accepts, free_port, running, wait_until

RESOURCE = """\
apiVersion: kdeps.io/v1
kind: Resource
metadata:
  actionId: hello
  name: Hello
run:
  apiResponse:
    success: true
    response:
      hello: world
"""


def _agent(root: Path, web_server: str, *, api: bool = True, resources: bool = True) -> Path:
    """An agent folder with a public/ site, a secret beside it, and the given webServer block."""
    api_block = """\
  apiServer:
    routes:
      - path: /api/v1/hello
        methods: [GET]
""" if api else ""
    (root / "workflow.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "workflow.yaml").write_text(f"""\
apiVersion: kdeps.io/v1
kind: Workflow
metadata:
  name: web-agent
  version: "1.0.0"
  targetActionId: {"hello" if resources else '"none"'}
settings:
{api_block}  webServer:
{textwrap.indent(textwrap.dedent(web_server), "    ")}""")
    if resources:
        (root / "resources").mkdir(exist_ok=True)
        (root / "resources" / "hello.yaml").write_text(RESOURCE)
    public = root / "public"
    (public / "docs").mkdir(parents=True, exist_ok=True)
    (public / "index.html").write_text("<h1>home</h1>")
    (public / "app.js").write_text("console.log(1)")
    (public / "style.css").write_text("body{}")
    (public / "docs" / "index.html").write_text("<h1>docs</h1>")
    (root / "secret.txt").write_text("TOP-SECRET")
    return root


STATIC_ROUTES = """\
routes:
  - path: "/"
    serverType: static
    publicPath: ./public
  - path: /manual
    serverType: static
    publicPath: ./public/docs
"""


def _raw_get(port: int, target: str) -> tuple[int, bytes]:
    """A GET with the request target sent exactly as written (clients normalise `..` away)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def static_agent(tmp_path):
    agent = _agent(tmp_path / "agent", STATIC_ROUTES)
    with running(agent) as server:
        yield server


async def test_static_files_with_types_and_index(static_agent, http):
    url = static_agent.url
    async with http.get(url + "/") as r:
        assert r.status == 200 and await r.text() == "<h1>home</h1>"
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert "content-security-policy" not in r.headers
    async with http.get(url + "/app.js") as r:
        assert r.status == 200 and r.headers["content-type"].split(";")[0] in (
            "text/javascript", "application/javascript")
    async with http.get(url + "/style.css") as r:
        assert r.status == 200 and r.headers["content-type"].startswith("text/css")
    async with http.get(url + "/docs/") as r:
        assert r.status == 200 and await r.text() == "<h1>docs</h1>"
    async with http.get(url + "/manual/") as r:  # a second route, its own folder
        assert r.status == 200 and await r.text() == "<h1>docs</h1>"
    for folder in ("/docs", "/manual"):  # a folder without the slash redirects to it
        async with http.get(url + folder, allow_redirects=False) as r:
            assert r.status in (301, 307) and r.headers["location"].endswith(folder + "/")
        async with http.get(url + folder) as r:
            assert r.status == 200 and await r.text() == "<h1>docs</h1>"
    async with http.get(url + "/nope.html") as r:
        assert r.status == 404
    async with http.head(url + "/style.css") as r:
        assert r.status == 200 and await r.read() == b""


async def test_api_routes_win_on_the_shared_port(static_agent, http):
    async with http.get(static_agent.url + "/api/v1/hello") as r:
        assert r.status == 200
        assert (await r.json())["data"] == {"hello": "world"}


@pytest.mark.parametrize("target", [
    "/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/docs/../../secret.txt",
    "/manual/../../secret.txt", "/manual/%2e%2e/%2e%2e/secret.txt", "/link.txt",
])
def test_static_never_leaves_public_path(tmp_path, target):
    agent = _agent(tmp_path / "agent", STATIC_ROUTES)
    (agent / "public" / "link.txt").symlink_to(agent / "secret.txt")
    with running(agent) as server:
        status, body = _raw_get(server.port, target)
    assert b"TOP-SECRET" not in body
    assert status in (400, 404)


# ---------------------------------------------------------------- app routes


class App:
    """A tiny local web app the agent proxies to: echo, a stream the test paces, uploads, a websocket."""

    def __init__(self) -> None:
        self.port = free_port()
        self.release = asyncio.Event()
        self.gone = asyncio.Event()
        self.runner: web.AppRunner | None = None

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({
            "method": request.method, "path": request.raw_path, "headers": dict(request.headers),
            "body": body.decode(errors="replace"), "chunked": request.headers.get("Transfer-Encoding"),
        }, headers={"Set-Cookie": "a=1", "X-App": "yes"})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        # the second part is sent only once the test has received the first through the proxy
        await asyncio.wait_for(self.release.wait(), 10)
        await response.write(b"data: second\n\n")
        await response.write_eof()
        return response

    async def endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: tick\n\n")
        try:
            await asyncio.sleep(30)  # nothing more until the client gives up
        finally:
            self.gone.set()  # aiohttp cancels the handler when the proxy drops the connection
        return response

    async def upload(self, request: web.Request) -> web.Response:
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
        return web.json_response({"size": size})

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("chat",))
        await ws.prepare(request)
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str("echo:" + message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        return ws

    async def start(self) -> App:
        app = web.Application()
        app.router.add_get("/stream", self.stream)
        app.router.add_get("/endless", self.endless)
        app.router.add_post("/upload", self.upload)
        app.router.add_get("/ws", self.socket)
        app.router.add_route("*", "/{tail:.*}", self.echo)
        self.runner = web.AppRunner(app, handler_cancellation=True)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def local_app():
    app = await App().start()
    yield app
    await app.stop()


@pytest.fixture
def proxy_agent(tmp_path, local_app):
    dead = free_port()
    agent = _agent(tmp_path / "agent", f"""\
routes:
  - path: /app
    serverType: app
    appPort: {local_app.port}
    headers:
      X-Upstream-Token: "Bearer {{{{ env('C2_UPSTREAM_TOKEN') }}}}"
  - path: /down
    serverType: app
    appPort: {dead}
  - path: /
    serverType: static
    publicPath: ./public
""")
    with running(agent, env={"C2_UPSTREAM_TOKEN": "tok-123"}) as server:
        yield server


async def test_app_route_proxies_path_query_and_headers(proxy_agent, http):
    headers = {"Connection": "keep-alive, X-Private", "X-Private": "1", "Proxy-Authorization": "Basic eA==",
               "X-Custom": "kept"}
    async with http.put(proxy_agent.url + "/app/items/a%20b?q=1&r=two", data=b"payload",
                        headers=headers) as r:
        assert r.status == 200
        data = await r.json()
        assert r.headers["X-App"] == "yes" and r.headers["Set-Cookie"] == "a=1"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert data["method"] == "PUT"
    assert data["path"] == "/items/a%20b?q=1&r=two"  # the route prefix is stripped, encoding kept
    assert data["body"] == "payload"
    seen = {k.lower(): v for k, v in data["headers"].items()}
    assert seen["x-custom"] == "kept"
    assert "x-private" not in seen and "proxy-authorization" not in seen  # hop-by-hop
    assert seen["x-upstream-token"] == "Bearer tok-123"  # route headers, {{ env() }} resolved
    assert seen["x-forwarded-for"] == "127.0.0.1"
    async with http.get(proxy_agent.url + "/app") as r:  # the prefix itself is the app's root
        assert (await r.json())["path"] == "/"
    async with http.get(proxy_agent.url + "/") as r:  # other paths still reach the static route
        assert await r.text() == "<h1>home</h1>"


async def test_app_response_streams_through(proxy_agent, local_app, http):
    async with http.get(proxy_agent.url + "/app/stream") as r:
        assert r.status == 200 and r.headers["content-type"] == "text/event-stream"
        first = await asyncio.wait_for(r.content.readuntil(b"\n\n"), 10)
        assert first == b"data: first\n\n"
        local_app.release.set()
        rest = await asyncio.wait_for(r.content.read(), 10)
    assert rest == b"data: second\n\n"


async def test_client_disconnect_releases_the_app_connection(proxy_agent, local_app):
    async with aiohttp.ClientSession() as session:
        response = await session.get(proxy_agent.url + "/app/endless")
        assert await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10) == b"data: tick\n\n"
        response.close()  # the browser tab goes away
    await asyncio.wait_for(local_app.gone.wait(), 10)


async def test_request_body_streams_to_the_app(proxy_agent, http):
    async def body():
        for _ in range(64):
            yield b"x" * 16384

    async with http.post(proxy_agent.url + "/app/upload", data=body()) as r:
        assert r.status == 200
        assert (await r.json())["size"] == 64 * 16384


async def test_websocket_is_relayed(proxy_agent, http):
    async with http.ws_connect(proxy_agent.url.replace("http", "ws") + "/app/ws", protocols=("chat",)) as ws:
        assert ws.protocol == "chat"
        await ws.send_str("hi")
        assert (await ws.receive(timeout=5)).data == "echo:hi"
        await ws.send_bytes(b"abc")
        assert (await ws.receive(timeout=5)).data == b"cba"


async def test_unreachable_app_is_502(proxy_agent, http):
    async with http.get(proxy_agent.url + "/down/x") as r:
        assert r.status == 502
        assert "not reachable" in await r.text()


# ---------------------------------------------------------------- commands, ports, web-only agents


async def test_app_command_starts_in_public_path_and_stops_with_the_server(tmp_path, http):
    app_port = free_port()
    agent = _agent(tmp_path / "agent", f"""\
routes:
  - path: /
    serverType: app
    publicPath: ./site
    appPort: {app_port}
    command: "exec {sys.executable} -m http.server {app_port} --bind 127.0.0.1"
""")
    (agent / "site").mkdir()
    (agent / "site" / "hello.txt").write_text("from the app's folder")
    with running(agent) as server:
        deadline = time.monotonic() + 20
        status, text = 0, ""
        while time.monotonic() < deadline:
            async with http.get(server.url + "/hello.txt") as r:
                status, text = r.status, await r.text()
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert (status, text) == (200, "from the app's folder")
        assert accepts(app_port)
        server.terminate()
        assert server.wait() == 0
    deadline = time.monotonic() + 5
    while accepts(app_port) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not accepts(app_port), "the app command outlived kdeps run"


async def test_web_server_on_its_own_port(tmp_path, http):
    web_port = free_port()
    agent = _agent(tmp_path / "agent", f"portNum: {web_port}\nhostIp: 127.0.0.1\n" + STATIC_ROUTES)
    with running(agent) as server:
        async with http.get(f"http://127.0.0.1:{web_port}/") as r:
            assert r.status == 200 and await r.text() == "<h1>home</h1>"
        async with http.get(f"http://127.0.0.1:{web_port}/api/v1/hello") as r:
            assert r.status == 404  # the API stays on its own port
        async with http.get(server.url + "/api/v1/hello") as r:
            assert r.status == 200
        async with http.get(server.url + "/") as r:
            assert r.status == 404 and "application/json" in r.headers["content-type"]
        assert f"Starting web server on 127.0.0.1:{web_port}" in server.stdout


async def test_agent_without_api_server_serves_only_the_web_routes(tmp_path, http):
    agent = _agent(tmp_path / "agent", STATIC_ROUTES, api=False)
    with running(agent) as server:
        async with http.get(server.url + "/") as r:
            assert r.status == 200 and await r.text() == "<h1>home</h1>"
        async with http.get(server.url + "/api/v1/hello") as r:
            assert r.status == 404
        assert "webServer routes only" in server.stdout


async def test_webserver_only_agent_without_resources(tmp_path, http):
    """KDeps' own shape for a UI-only agent: no apiServer, no resources, targetActionId "none".
    Needs the loader to accept a workflow with no resources when it has a webServer."""
    agent = _agent(tmp_path / "agent", STATIC_ROUTES, api=False, resources=False)
    with running(agent) as server:
        async with http.get(server.url + "/docs/") as r:
            assert r.status == 200 and await r.text() == "<h1>docs</h1>"


async def test_web_limits(tmp_path, http):
    agent = _agent(tmp_path / "agent", """\
maxBodyBytes: 10
rateLimit:
  requestsPerMinute: 60
  burst: 3
""" + STATIC_ROUTES, api=False)
    with running(agent) as server:
        async with http.post(server.url + "/", data=b"x" * 11) as r:
            assert r.status == 413
        statuses = []
        for _ in range(4):
            async with http.get(server.url + "/") as r:
                statuses.append(r.status)
        assert statuses[-1] == 429 and 200 in statuses


def test_validate_accepts_upstream_web_keys(tmp_path):
    agent = _agent(tmp_path / "agent", """\
maxConcurrent: 5
trustedProxies: ["10.0.0.0/8"]
routes:
  - path: /ui
    serverType: app
    appPort: 8501
    command: "streamlit run app.py"
    headers:
      Authorization: "Bearer {{ env('TOKEN') }}"
""")
    proc = subprocess.run([sys.executable, "-m", "kdeps", "validate", str(agent)], capture_output=True,
                          text=True, timeout=60, env={**os.environ})
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow  # waits out the command's 5 s stop grace before killing it
def test_sigterm_with_a_stubborn_command_still_exits(tmp_path):
    agent = _agent(tmp_path / "agent", f"""\
routes:
  - path: /
    serverType: app
    publicPath: ./public
    appPort: {free_port()}
    command: "trap '' TERM; touch trapped; sleep 60"
""")
    with running(agent) as server:
        assert wait_until(lambda: (agent / "public" / "trapped").exists())  # it now ignores SIGTERM
        server.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        assert server.wait(timeout=20) == 0


def _run_until_exit(agent: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kdeps", "run", str(agent), "--port", str(free_port())],
                          capture_output=True, text=True, timeout=60)


def test_command_in_a_missing_folder_is_a_clean_error(tmp_path):
    agent = _agent(tmp_path / "agent", f"""\
routes:
  - path: /
    serverType: app
    publicPath: ./missing
    appPort: {free_port()}
    command: "python3 app.py"
""")
    proc = _run_until_exit(agent)
    assert proc.returncode != 0
    assert "publicPath" in proc.stderr and "missing" in proc.stderr and "is not a folder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_web_port_in_use_is_a_clean_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        agent = _agent(tmp_path / "agent", f"portNum: {port}\nhostIp: 127.0.0.1\n" + STATIC_ROUTES)
        proc = _run_until_exit(agent)
    assert proc.returncode != 0
    assert f"webServer cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_web_only_agent_listens_on_its_port_num(tmp_path, http):
    """As KDeps' e2e scripts run it: `kdeps run workflow.yaml`, no --port, webServer.portNum is the port."""
    port = free_port()
    agent = _agent(tmp_path / "agent", f"portNum: {port}\n" + STATIC_ROUTES, api=False)
    proc = subprocess.Popen([sys.executable, "-m", "kdeps", "run", str(agent / "workflow.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not accepts(port) and time.monotonic() < deadline and proc.poll() is None:
            await asyncio.sleep(0.05)
        async with http.get(f"http://127.0.0.1:{port}/") as r:
            assert r.status == 200 and await r.text() == "<h1>home</h1>"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
