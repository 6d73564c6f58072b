"""1,000 mixed requests through `kdeps run` against a provider that fails in every way we know of.

Every request must end, within its deadline, in either the right answer (after retries) or a clear
JSON error; the server must stay up and keep answering; the API key must never show in its output.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.agents import make_agent
from tests.e2e.server_utils import KdepsServer
from tests.resilience.fault_fake import PERMANENT, SUCCESS_EXPECTED, FaultFake

pytestmark = pytest.mark.resilience

SECRET = "sk-resilience-7f3a9c-DO-NOT-LOG-51e0"
TIMEOUT = 2.5  # the chat resource's timeoutDuration, in seconds
MARGIN = 4.0  # slack for a loaded 2-core machine: past TIMEOUT + MARGIN a request counts as hung
TOTAL = 1000
CONCURRENCY = 20
# kind -> share of the 1,000 requests (slow and r429s cost a second or more each: keep them few)
MIX = {"ok": 40, "r429": 6, "r429s": 2, "r500": 6, "r503": 3, "r529": 4, "reset": 5, "truncated": 4,
       "badjson": 4, "leak500": 2, "slow": 3, "cut": 5, "persist": 6, "reject": 5, "leak401": 5}
STREAMABLE = {"ok", "r500", "r429", "reset", "persist"}


def _chat(action_id: str, *, stream: bool) -> str:
    skip = "get('mode') != 'stream'" if stream else "get('mode') == 'stream'"
    return f"""
metadata:
  actionId: {action_id}
run:
  skipCondition:
    - {skip}
  chat:
    backend: openai
    baseUrl: "{{{{ get('FAKE_URL', 'env') }}}}"
    model: gpt-4o-mini
    prompt: "{{{{ get('q') }}}}"
    stream: {str(stream).lower()}
    timeoutDuration: {int(TIMEOUT * 1000)}ms
    retry:
      maxAttempts: 3
      initialDelay: 20ms
      maxDelay: 1500ms
      backoffMultiplier: 2
"""


RESOURCES = {
    "plain": _chat("plain", stream=False),
    "streamed": _chat("streamed", stream=True),
    "response": """
metadata:
  actionId: response
  requires: [plain, streamed]
run:
  apiResponse:
    success: true
    response:
      answer: "{{ llm.response('plain') ?? llm.response('streamed') }}"
""",
}


@dataclass
class Outcome:
    kind: str
    rid: int
    stream: bool
    status: int
    body: Any
    raw: str
    elapsed: float
    failure: str = ""  # a client-side failure: timeout (hung), connection error, non-JSON body


def _script() -> list[tuple[str, int, bool]]:
    rng = random.Random(20240611)
    weights = list(MIX.values())
    kinds = rng.choices(list(MIX), weights=weights, k=TOTAL)
    plan = []
    for rid, kind in enumerate(kinds):
        stream = kind == "cut" or (kind in STREAMABLE and rng.random() < 0.25)
        plan.append((kind, rid, stream))
    return plan


async def _send(http: aiohttp.ClientSession, url: str, kind: str, rid: int, stream: bool) -> Outcome:
    body = {"q": f"case={kind} id={rid}", "mode": "stream" if stream else "plain"}
    began = time.perf_counter()
    try:
        async with http.post(url, json=body) as r:
            raw = await r.text()
            elapsed = time.perf_counter() - began
            try:
                data = json.loads(raw)
            except ValueError:
                return Outcome(kind, rid, stream, r.status, None, raw, elapsed, "not JSON")
            return Outcome(kind, rid, stream, r.status, data, raw, elapsed)
    except TimeoutError:
        return Outcome(kind, rid, stream, 0, None, "", time.perf_counter() - began, "hung (client timeout)")
    except aiohttp.ClientError as err:
        return Outcome(kind, rid, stream, 0, None, "", time.perf_counter() - began, f"client error: {err!r}")


async def _drive(url: str, plan: list[tuple[str, int, bool]]) -> list[Outcome]:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT + MARGIN)
    outcomes: list[Outcome] = []
    queue = iter(plan)
    async with aiohttp.ClientSession(timeout=timeout,
                                     connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as http:
        async def worker() -> None:
            for kind, rid, stream in queue:
                outcomes.append(await _send(http, url, kind, rid, stream))

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        final = await _send(http, url, "ok", TOTAL, False)
    return [*outcomes, final]


@dataclass
class Run:
    outcomes: list[Outcome]
    fake: FaultFake
    server: KdepsServer
    alive_after: bool
    seconds: float


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("resilience")
    agent = make_agent(root / "agent", RESOURCES, name="resilience")
    with FaultFake(SECRET) as fake:
        server = KdepsServer(agent, env={"OPENAI_API_KEY": SECRET, "FAKE_URL": fake.url})
        server.start()
        try:
            began = time.perf_counter()
            outcomes = asyncio.run(_drive(server.url + "/api/v1/run", _script()))
            seconds = time.perf_counter() - began
            alive = server.proc is not None and server.proc.poll() is None
        finally:
            server.stop()
        yield Run(outcomes, fake, server, alive, seconds)


def _is_json_error(o: Outcome) -> bool:
    error = o.body.get("error") if isinstance(o.body, dict) else None
    return (o.status >= 400 and o.body.get("success") is False and isinstance(error, dict)
            and isinstance(error.get("message"), str) and error["message"].strip() != "")


def _answer(o: Outcome) -> Any:
    return (o.body.get("data") or {}).get("answer") if isinstance(o.body, dict) else None


def _problem(o: Outcome, fake: FaultFake) -> str | None:
    """Why this outcome is wrong, or None."""
    if o.failure:
        return o.failure
    if o.elapsed > TIMEOUT + MARGIN:
        return f"took {o.elapsed:.2f}s"
    if o.kind in SUCCESS_EXPECTED:
        if o.status != 200 or _answer(o) != f"answer-{o.rid}":
            return f"expected success after retry, got {o.status} {o.raw[:200]}"
        return None
    if o.status == 200:
        return None if o.kind == "cut" and str(_answer(o)).startswith(f"answer-{o.rid}") else \
            f"unexpected success {o.raw[:200]}"
    if not _is_json_error(o):
        return f"not a clear JSON error: {o.status} {o.raw[:200]}"
    message = o.body["error"]["message"]
    expected = {"slow": (504,), "persist": (502,), "cut": (502,), "reject": (400, 502),
                "leak401": (400, 401, 502)}[o.kind]
    if o.status not in expected:
        return f"status {o.status}, expected one of {expected}: {message}"
    if o.kind == "slow" and "timeoutDuration" not in message:
        return f"timeout error does not say which limit was hit: {message}"
    if o.kind == "reject" and "rejected for the test" not in message:
        return f"provider message not shown: {message}"
    if o.kind in PERMANENT:
        attempts = fake.attempts[o.rid]
        wanted = 3 if o.kind == "persist" else 1  # 4xx is never retried
        if attempts != wanted:
            return f"{attempts} attempts, expected {wanted}"
    return None


def test_every_request_ends_well_and_in_time(run: Run) -> None:
    outcomes = run.outcomes
    assert len(outcomes) == TOTAL + 1
    problems = [(o.kind, o.rid, o.stream, p) for o in outcomes if (p := _problem(o, run.fake))]
    kinds = Counter(o.kind for o in outcomes)
    assert not problems, f"{len(problems)} bad of {len(outcomes)} (mix {dict(kinds)}): {problems[:10]}"
    # the script really did exercise every fault, streamed and not
    assert set(kinds) == set(MIX)
    assert any(o.stream and o.kind == "r500" for o in outcomes)
    # the server survived and still answers: the last request was an ordinary one, after all the faults
    assert run.alive_after, run.server.stderr[-2000:]
    final = outcomes[-1]
    assert final.rid == TOTAL and final.status == 200 and _answer(final) == f"answer-{TOTAL}"
    assert "Traceback" not in run.server.stderr, run.server.stderr[-3000:]
    assert run.seconds < 90, f"the script took {run.seconds:.1f}s"


def test_api_key_never_leaks(run: Run) -> None:
    # the fake did receive the key (so the test could fail), in the header only
    assert any(r.header("authorization") == f"Bearer {SECRET}" for r in run.fake.requests)
    logs = run.server.stdout + run.server.stderr
    assert "retrying" in logs  # the retry path, whose log lines quote provider messages, did run
    assert SECRET not in logs
    leaked = [o.rid for o in run.outcomes if SECRET in o.raw]
    assert not leaked, f"API key in the response to requests {leaked[:10]}"
    assert any(o.kind in ("leak401", "leak500") for o in run.outcomes)
