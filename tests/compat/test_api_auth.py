"""API auth as KDeps has it, safe by default: `kdeps run` subprocesses driven over HTTP.

The token comes from `KDEPS_API_AUTH_TOKEN`, `api_auth_token` in the user's config file, or
`apiServer.authToken`; with one, workflow routes need it (bearer or X-Api-Key) except the probes and
`public: true` routes; without one, the API serves only on loopback. Deploy output names the token,
never its value."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.e2e.server_utils import free_port, kdeps_argv, running

TOKEN = "tok-7f3a9c2e51"
CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


def _agent(root: Path, *, host: str = "127.0.0.1", auth_token: str | None = None) -> Path:
    """A flat-layout agent: /api/v1/secure (guarded) and /api/v1/open (public: true)."""
    api: dict = {"hostIp": host, "portNum": 3000, "routes": [
        {"path": "/api/v1/secure", "methods": ["GET", "POST"]},
        {"path": "/api/v1/open", "methods": ["GET"], "public": True},
    ]}
    if auth_token is not None:
        api["authToken"] = auth_token
    root.mkdir(parents=True)
    (root / "workflow.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kdeps.io/v1", "kind": "Workflow",
        "metadata": {"name": "auth-agent", "version": "1.0.0", "targetActionId": "reply"},
        "settings": {"apiServer": api},
        "resources": [{"actionId": "reply", "name": "Reply",
                       "apiResponse": {"success": True, "response": {"message": "hello"}}}],
    }, sort_keys=False))
    return root


def _env(tmp: Path, token: str | None = None, **extra: str) -> dict[str, str]:
    """A clean auth environment: no token from the caller's shell or home config."""
    return {"KDEPS_API_AUTH_TOKEN": token or "", "KDEPS_CONFIG_PATH": str(tmp / "no-config.yaml"),
            **extra}


def _run(agent: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([*kdeps_argv(), "run", str(agent), *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


# -- without a token ------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["flag", "workflow"])
def test_non_loopback_without_token_refuses_to_start(tmp_path: Path, where: str) -> None:
    agent = _agent(tmp_path / "a", host="0.0.0.0" if where == "workflow" else "127.0.0.1")
    args = ("--host", "0.0.0.0") if where == "flag" else ()
    started = time.monotonic()
    done = _run(agent, *args, "--port", str(free_port()), env=_env(tmp_path))
    assert done.returncode == 1
    assert "KDEPS_API_AUTH_TOKEN" in done.stderr and "0.0.0.0" in done.stderr
    assert "Traceback" not in done.stderr and "Starting API server" not in done.stdout
    assert time.monotonic() - started < 30  # refused before serving, not after a timeout


async def test_loopback_without_token_serves_and_says_auth_is_off(tmp_path: Path, http) -> None:
    agent = _agent(tmp_path / "a")
    with running(agent, env=_env(tmp_path)) as server:
        assert "API auth: off" in server.stdout
        async with http.get(server.url + "/api/v1/secure") as r:
            assert r.status == 200 and "hello" in await r.text()
            assert r.headers["Content-Security-Policy"] == CSP
            assert r.headers["X-Content-Type-Options"] == "nosniff"


# -- with a token ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("guarded")
    with running(_agent(tmp / "a"), env=_env(tmp, TOKEN)) as server:
        yield server


async def test_missing_or_wrong_token_is_401_json(guarded, http) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}, {"X-Api-Key": "wrong"}):
        async with http.get(guarded.url + "/api/v1/secure", headers=headers) as r:
            assert r.status == 401, headers
            body = await r.json()
            assert body["success"] is False and "authentication required" in body["error"]["message"]
            assert r.headers["WWW-Authenticate"] == "Bearer"
            assert r.headers["Content-Security-Policy"] == CSP
    # unknown paths answer 401 too: without the token nobody learns which routes exist
    async with http.get(guarded.url + "/api/v1/nope") as r:
        assert r.status == 401


async def test_bearer_or_api_key_header_is_accepted(guarded, http) -> None:
    for headers in ({"Authorization": f"Bearer {TOKEN}"}, {"authorization": f"bearer  {TOKEN} "},
                    {"X-Api-Key": TOKEN}):
        async with http.post(guarded.url + "/api/v1/secure", headers=headers, json={}) as r:
            assert r.status == 200, headers
            assert "hello" in await r.text()


async def test_probes_are_exempt_and_carry_csp(guarded, http) -> None:
    for path in ("/health", "/ready"):
        async with http.get(guarded.url + path) as r:
            assert r.status == 200
            assert r.headers["Content-Security-Policy"] == CSP


async def test_public_route_serves_without_token_but_refuses_a_wrong_one(guarded, http) -> None:
    async with http.get(guarded.url + "/api/v1/open") as r:
        assert r.status == 200
    async with http.get(guarded.url + "/api/v1/open", headers={"Authorization": "Bearer wrong"}) as r:
        assert r.status == 401
    async with http.get(guarded.url + "/api/v1/open", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status == 200


def test_banner_says_auth_is_on_and_the_token_is_never_logged(guarded) -> None:
    assert "API auth: bearer token required" in guarded.stdout
    assert TOKEN not in guarded.stdout + guarded.stderr


async def test_config_file_token(tmp_path: Path, http) -> None:
    config = tmp_path / "config.yaml"
    config.write_text('api_auth_token: "from-the-config-file"\n')
    env = {**_env(tmp_path), "KDEPS_CONFIG_PATH": str(config)}
    with running(_agent(tmp_path / "a"), env=env) as server:
        async with http.get(server.url + "/api/v1/secure") as r:
            assert r.status == 401
        async with http.get(server.url + "/api/v1/secure",
                            headers={"Authorization": "Bearer from-the-config-file"}) as r:
            assert r.status == 200


async def test_workflow_auth_token_wins_over_the_environment(tmp_path: Path, http) -> None:
    agent = _agent(tmp_path / "a", auth_token="{{ get('MY_AGENT_TOKEN', 'env') }}")
    env = _env(tmp_path, "env-token", MY_AGENT_TOKEN="workflow-token")
    with running(agent, env=env) as server:
        async with http.get(server.url + "/api/v1/secure",
                            headers={"Authorization": "Bearer env-token"}) as r:
            assert r.status == 401
        async with http.get(server.url + "/api/v1/secure",
                            headers={"Authorization": "Bearer workflow-token"}) as r:
            assert r.status == 200


# -- deploy output names the token ----------------------------------------------------------------

def test_build_compose_and_k8s_pass_the_token_by_name(tmp_path: Path) -> None:
    from kdeps.deploy.compose import compose_data
    from kdeps.deploy.dockerfile import render_dockerfile, render_entrypoint, run_hints
    from kdeps.deploy.k8s import kubectl_secret_hint, plan_k8s, render_yaml
    from kdeps.deploy.plan import plan_build
    from kdeps.spec import load_project

    project = load_project(_agent(tmp_path / "a"))
    plan = plan_build(project)
    assert "KDEPS_API_AUTH_TOKEN" in plan.runtime_env
    service = next(iter(compose_data(plan)["services"].values()))
    assert service["environment"]["KDEPS_API_AUTH_TOKEN"] == "${KDEPS_API_AUTH_TOKEN:-}"
    assert "-e KDEPS_API_AUTH_TOKEN " in run_hints(plan)[0]
    assert "KDEPS_API_AUTH_TOKEN" not in render_dockerfile(plan).split("# Run:")[0]
    assert "KDEPS_API_AUTH_TOKEN" not in render_entrypoint(plan)
    export = plan_k8s(project)
    env = [e for doc in export.manifests if doc["kind"] == "Deployment"
           for c in doc["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])]
    assert {"name": "KDEPS_API_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": export.secret_name, "key": "KDEPS_API_AUTH_TOKEN"}}} in env
    assert "KDEPS_API_AUTH_TOKEN=REPLACE_ME" in (kubectl_secret_hint(export) or "")
    assert not [doc for doc in export.manifests if doc["kind"] == "Secret"]
    assert "value: " + TOKEN not in render_yaml(export)


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("agent.example", False),
])
def test_only_loopback_addresses_may_serve_without_a_token(host: str, loopback: bool) -> None:
    from kdeps.addresses import is_loopback
    from kdeps.errors import KdepsError
    from kdeps.server.auth import require_token

    assert is_loopback(host) is loopback
    require_token(True, host)  # with a token, any address
    if loopback:
        require_token(False, host)
    else:
        with pytest.raises(KdepsError, match="KDEPS_API_AUTH_TOKEN"):
            require_token(False, host)
