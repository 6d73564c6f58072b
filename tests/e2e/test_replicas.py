"""Three `kdeps run` replicas sharing one redis-server behind a round-robin proxy behave as one
service: sessions follow the client across replicas, a rolling restart (SIGTERM one replica at a
time under load) loses no request, and 10,000 requests at concurrency 100 finish without an error."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.server_utils import KdepsServer, accepts, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
ROUTE = "/api/v1/visit"

WORKFLOW = """\
apiVersion: kdeps.io/v1
kind: Workflow
metadata:
  name: replicas
  version: "1.0.0"
  targetActionId: response
settings:
  apiServerMode: true
  apiServer:
    routes:
      - path: /api/v1/visit
        methods: [POST]
    maxConcurrentRequests: 1000
  session:
    type: redis
    url: {redis_url}
    ttl: 10m
"""

RESOURCE = """\
apiVersion: kdeps.io/v1
kind: Resource
metadata:
  actionId: response
run:
  exprBefore:
    - set('visits', (get('visits', 'session') ?? 0) + 1, 'session')
  apiResponse:
    success: true
    response:
      visits: get('visits', 'session')
      replica: get('KDEPS_REPLICA', 'env')
"""


@pytest.fixture(scope="module")
def agent(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("replicas") / "agent"
    (root / "resources").mkdir(parents=True)
    (root / "workflow.yaml").write_text(WORKFLOW.format(redis_url=redis_url))
    (root / "resources" / "response.yaml").write_text(RESOURCE)
    return root


class Cluster:
    """N replicas on their own ports and the proxy in front of them."""

    def __init__(self, agent: Path, count: int) -> None:
        self.agent = agent
        self.ports = [free_port() for _ in range(count)]
        self.replicas = [self._replica(i) for i in range(count)]
        self.proxy_port = free_port()
        self.url = f"http://127.0.0.1:{self.proxy_port}"
        self.proxy: subprocess.Popen[bytes] | None = None

    def _replica(self, i: int) -> KdepsServer:
        return KdepsServer(self.agent, env={"KDEPS_REPLICA": f"r{i}"}, port=self.ports[i])

    def start(self) -> Cluster:
        for replica in self.replicas:
            replica.start()
        backends = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.proxy = subprocess.Popen([sys.executable, "-m", "tests.e2e.round_robin", str(self.proxy_port),
                                       *backends], cwd=ROOT, stdout=subprocess.DEVNULL)
        if not wait_until(lambda: accepts(self.proxy_port)):
            raise RuntimeError(f"the proxy did not listen on {self.proxy_port} within 15 s")
        return self

    def restart(self, i: int) -> int:
        """SIGTERM replica i, wait for its exit (returned), start a new one on the same port."""
        old = self.replicas[i]
        old.terminate()
        code = old.wait(40)
        self.replicas[i] = self._replica(i).start()
        return code

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.terminate()
            self.proxy.wait(10)
        for replica in self.replicas:
            replica.stop()


@pytest.fixture
def cluster(agent: Path) -> Iterator[Cluster]:
    group = Cluster(agent, 3)
    try:
        yield group.start()
    finally:
        group.stop()


async def visit(http: aiohttp.ClientSession, url: str) -> dict[str, object]:
    async with http.post(url + ROUTE, json={}) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["data"]


async def test_a_session_set_on_one_replica_is_honoured_on_the_others(cluster: Cluster) -> None:
    # unsafe: keep cookies set by an IP-address host (127.0.0.1); a cookie is not bound to a port
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        seen = []
        for port in cluster.ports:  # straight to each replica in turn, one cookie jar
            seen.append(await visit(http, f"http://127.0.0.1:{port}"))
        assert [(s["replica"], s["visits"]) for s in seen] == [("r0", 1), ("r1", 2), ("r2", 3)]
        through = [await visit(http, cluster.url) for _ in range(6)]  # and through the proxy
        assert [s["visits"] for s in through] == [4, 5, 6, 7, 8, 9]
        assert {s["replica"] for s in through} == {"r0", "r1", "r2"}


@pytest.mark.slow  # load running through three restarts
async def test_rolling_restart_loses_no_request(cluster: Cluster) -> None:
    done = asyncio.Event()
    failures: list[str] = []
    counts: list[int] = []

    async def client() -> None:
        # Each client is one user: its visits must count up by one, whichever replica answers.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            expected = 1
            while not done.is_set():
                try:
                    async with http.post(cluster.url + ROUTE, json={}) as r:
                        body = await r.json()
                        if r.status != 200:
                            failures.append(f"{r.status}: {body}")
                        elif body["data"]["visits"] != expected:
                            failures.append(f"visits {body['response']['visits']} != {expected}")
                        expected += 1
                except aiohttp.ClientError as exc:
                    failures.append(repr(exc))
            counts.append(expected - 1)

    clients = [asyncio.create_task(client()) for _ in range(8)]
    await asyncio.sleep(0.5)
    for i in range(3):
        assert await asyncio.to_thread(cluster.restart, i) == 0
        await asyncio.sleep(0.3)
    done.set()
    await asyncio.gather(*clients)
    assert failures == []
    assert sum(counts) > 50  # the load really ran through the restarts


@pytest.mark.slow
async def test_ten_thousand_requests_at_concurrency_100(cluster: Cluster) -> None:
    total, concurrency = 10_000, 100
    statuses: dict[int, int] = {}
    errors: list[str] = []
    queue = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)

    async with aiohttp.ClientSession(connector=connector) as http:
        async def worker() -> None:
            for _ in queue:
                try:
                    async with http.post(cluster.url + ROUTE, json={}) as r:
                        await r.read()
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                except aiohttp.ClientError as exc:
                    errors.append(repr(exc))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    assert errors == [] and statuses == {200: total}
