"""Shared bench machinery: the fast fake provider, the raw passthrough proxy, `kdeps run` and LiteLLM
as subprocesses, a load generator, and the result rows every measurement returns.

Every server runs in its own process so that none competes with the load generator for the GIL; on a
2-core box they still share CPUs, which is why each figure is a ratio against a baseline measured in
the same run, in alternating order, as the median of several trials.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
LITELLM_VENV = BENCH_DIR / ".litellm-venv"
FAKE_KEY = "sk-bench-fake-0000"
MODEL = "gpt-4o-mini"
ANSWER_TEXT = "Paris."


# -- results ----------------------------------------------------------------------------------------

@dataclass
class Row:
    """One line of the printed table: `value` of ours against `baseline`, and the target it is held to."""

    bench: str
    metric: str
    value: float | None
    baseline: float | None = None
    baseline_name: str = ""
    unit: str = ""
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Result:
    """What one measurement (P1..P7) returns: table rows, raw figures for results.json, notes."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# -- processes --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kdeps_argv() -> list[str]:
    """`kdeps` as a user runs it: the console script next to this interpreter."""
    script = Path(sys.executable).parent / "kdeps"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "kdeps"]


def bench_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Service:
    """A server subprocess with its output in files (a full pipe would stall it), always stopped."""

    def __init__(self, name: str, argv: list[str], port: int, *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, logdir: Path | None = None) -> None:
        self.name, self.argv, self.port = name, argv, port
        self.url = f"http://127.0.0.1:{port}"
        self.env = env or bench_env()
        self.cwd = cwd or ROOT
        self.logdir = logdir or Path(tempfile.mkdtemp(prefix=f"kdeps-bench-{name}-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def launch(self) -> Service:
        self.logdir.mkdir(parents=True, exist_ok=True)
        with open(self.logdir / "stdout", "wb") as out, open(self.logdir / "stderr", "wb") as err:
            self.started_at = time.perf_counter()
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err, env=self.env, cwd=self.cwd,
                                         start_new_session=True)
        return self

    def start(self, timeout: float = 30, ready: Callable[[], bool] | None = None) -> Service:
        """Launch and wait until `ready()` (default: the port accepts connections)."""
        self.launch()
        check = ready or (lambda: accepts(self.port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-1500:]}")
            if check():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready after {timeout:g}s:\n{self.log()[-1500:]}")

    def log(self) -> str:
        parts = []
        for name in ("stdout", "stderr"):
            with contextlib.suppress(OSError):
                parts.append((self.logdir / name).read_text(errors="replace"))
        return "\n".join(parts)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def rss_kib(pid: int) -> int:
    """Resident set size of `pid` plus its direct children, in KiB (from /proc)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    total = 0
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def python_child(name: str, code: str, port: int, **kw: Any) -> Service:
    """A `python -c CODE` server child (bench code importable)."""
    return Service(name, [sys.executable, "-c", code], port, **kw)


# -- the fast fake provider -------------------------------------------------------------------------

def _completion(model: str) -> bytes:
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER_TEXT},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
    }, separators=(",", ":")).encode()


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    data = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


_MODELS = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0,
                                                  "owned_by": "bench"}]}).encode()


class _FakeProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, just enough of it: POST → a chat completion (streamed when the body asks),
    GET → the model list. `delay` is the think time before answering; a stream sends `pieces` chunks
    `piece_delay` apart after the first one."""

    delay = 0.0
    pieces = 5
    piece_delay = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4: end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            self._answer(head.split(" ", 1)[0], body)

    def _answer(self, method: str, body: bytes) -> None:
        if method != "POST":
            self._send(200, _MODELS)
            return
        try:
            request = json.loads(body)
        except ValueError:
            self._send(400, b'{"error":{"message":"invalid JSON body"}}')
            return
        model = str(request.get("model") or MODEL)
        streamed = bool(request.get("stream"))
        loop = asyncio.get_running_loop()
        if streamed:
            respond = lambda: loop.create_task(self._stream(model))  # noqa: E731
        else:
            respond = lambda: self._send(200, _completion(model))  # noqa: E731
        if self.delay:
            loop.call_later(self.delay, respond)
        else:
            respond()

    def _send(self, status: int, body: bytes) -> None:
        if self.transport.is_closing():
            return
        reason = "OK" if status == 200 else "Bad Request"
        self.transport.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    async def _stream(self, model: str) -> None:
        t = self.transport
        if t.is_closing():
            return
        t.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        events = [_chunk(model, {"role": "assistant", "content": ""})]
        events += [_chunk(model, {"content": f"word{i} "}) for i in range(self.pieces)]
        events += [_chunk(model, {}, "stop"), b"data: [DONE]\n\n"]
        for i, event in enumerate(events):
            if i > 1 and self.piece_delay:
                await asyncio.sleep(self.piece_delay)
            if t.is_closing():
                return
            t.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        t.write(b"0\r\n\r\n")


def serve_fake(port: int, delay: float = 0.0, piece_delay: float = 0.0) -> None:
    """Run the fast fake OpenAI-compatible provider on 127.0.0.1:`port` until killed."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    _FakeProtocol.delay, _FakeProtocol.piece_delay = delay, piece_delay

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_FakeProtocol, "127.0.0.1", port,
                                                                backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_fake(delay: float = 0.0, piece_delay: float = 0.0) -> Service:
    """The fast fake in its own process; `.url` is its base (…/v1/chat/completions answers)."""
    port = free_port()
    code = f"from bench.common import serve_fake; serve_fake({port}, {delay!r}, {piece_delay!r})"
    return python_child("fake", code, port).start()


# -- the raw passthrough proxy (the practical ceiling of a Python route) -----------------------------

def serve_passthrough(port: int, upstream: str) -> None:
    """An aiohttp route doing the bare minimum kdeps does: read `{"q": …}`, call the provider once
    through a shared keep-alive session, answer `{"success": true, "data": {"answer": …}}`."""
    import aiohttp
    from aiohttp import web

    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    target = upstream.rstrip("/") + "/v1/chat/completions"

    async def on_startup(app: web.Application) -> None:
        app["http"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256, limit_per_host=0))

    async def on_cleanup(app: web.Application) -> None:
        await app["http"].close()

    async def handle(request: web.Request) -> web.Response:
        q = (await request.json()).get("q", "")
        body = {"model": MODEL, "messages": [{"role": "user", "content": q}]}
        async with request.app["http"].post(target, json=body,
                                            headers={"Authorization": f"Bearer {FAKE_KEY}"}) as r:
            data = await r.json()
        answer = data["choices"][0]["message"]["content"]
        return web.json_response({"success": True, "data": {"answer": answer}})

    app = web.Application()
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app.router.add_post("/api/v1/run", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def start_passthrough(upstream: str) -> Service:
    port = free_port()
    code = f"from bench.common import serve_passthrough; serve_passthrough({port}, {upstream!r})"
    return python_child("passthrough", code, port).start()


# -- kdeps ------------------------------------------------------------------------------------------

WORKFLOW = """\
apiVersion: kdeps.io/v1
kind: Workflow
metadata:
  name: bench
  version: "1.0.0"
  targetActionId: response
settings:
  apiServerMode: true
  apiServer:
    routes:
      - path: /api/v1/run
        methods: [POST]
"""


def chat_resource(action_id: str, fake_url: str, *, stream: bool = False, extra: str = "") -> str:
    return textwrap.dedent(f"""\
        apiVersion: kdeps.io/v1
        kind: Resource
        metadata:
          actionId: {action_id}
        run:
          chat:
            backend: openai
            baseUrl: "{fake_url}"
            apiKey: "{FAKE_KEY}"
            model: {MODEL}
            prompt: "{{{{ get('q') }}}}"
            stream: {"true" if stream else "false"}
            timeoutDuration: 30s
        """) + extra


def response_resource(requires: list[str], answer: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: kdeps.io/v1
        kind: Resource
        metadata:
          actionId: response
          requires: [{", ".join(requires)}]
        run:
          apiResponse:
            success: true
            response:
              answer: "{answer}"
        """)


def write_agent(root: Path, resources: dict[str, str], workflow: str = WORKFLOW) -> Path:
    """workflow.yaml + resources/<name>.yaml under `root` (replaced if present)."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "resources").mkdir(parents=True)
    (root / "workflow.yaml").write_text(workflow)
    for name, text in resources.items():
        (root / "resources" / f"{name}.yaml").write_text(text)
    return root


def chat_agent(root: Path, fake_url: str, *, chats: int = 1, stream: bool = False) -> Path:
    """An agent answering POST /api/v1/run {"q": …} with `chats` independent chat resources to the fake."""
    ids = [f"chat{i}" for i in range(chats)]
    resources = {aid: chat_resource(aid, fake_url, stream=stream) for aid in ids}
    answer = " ".join(f"{{{{ llm.response('{aid}') }}}}" for aid in ids)
    resources["response"] = response_resource(ids, answer)
    return write_agent(root, resources)


def start_kdeps(agent: Path, *extra: str, timeout: float = 30) -> Service:
    port = free_port()
    service = Service("kdeps", [*kdeps_argv(), "run", str(agent), "--port", str(port), *extra], port,
                      cwd=agent.parent)
    return service.start(timeout, ready=lambda: "Starting API server on" in service.log()
                         and accepts(port))


def start_chat_stack(started: list[Service], folder: Path) -> tuple[Service, Service, Service]:
    """The fake provider, the passthrough to it and `kdeps run` of the one-chat agent (written under
    `folder`), each added to `started` as soon as it runs."""
    fake = start_fake()
    started.append(fake)
    passthrough = start_passthrough(fake.url)
    started.append(passthrough)
    ours = start_kdeps(chat_agent(folder / "agent", fake.url))
    started.append(ours)
    return fake, passthrough, ours


# -- LiteLLM ----------------------------------------------------------------------------------------

class Unavailable(Exception):
    """A baseline that cannot run on this machine (the reason is printed, the bench goes on)."""


def ensure_litellm(timeout: float = 900) -> Path:
    """The `litellm` executable of the throwaway venv, installing `litellm[proxy]` on first use."""
    exe = LITELLM_VENV / "bin" / "litellm"
    marker = LITELLM_VENV / ".installed"
    if exe.exists() and marker.exists():
        return exe
    print("installing litellm[proxy] into bench/.litellm-venv (first run only)...", flush=True)
    try:
        if not (LITELLM_VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True,
                           capture_output=True, timeout=120)
        done = subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"installing litellm[proxy] took more than {timeout:g}s") from None
    except (OSError, subprocess.CalledProcessError) as err:
        raise Unavailable(f"cannot create the venv: {err}") from None
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["pip failed"]
        raise Unavailable(f"pip install litellm[proxy] failed: {last[0]}")
    if not exe.exists():
        raise Unavailable("litellm installed but has no `litellm` command")
    marker.touch()
    return exe


def start_litellm(fake_url: str, timeout: float = 120) -> Service:
    """The LiteLLM proxy on a free port, routing model `gpt-4o-mini` to the fake."""
    exe = ensure_litellm()
    work = Path(tempfile.mkdtemp(prefix="kdeps-bench-litellm-"))
    config = work / "config.yaml"
    config.write_text(textwrap.dedent(f"""\
        model_list:
          - model_name: {MODEL}
            litellm_params:
              model: openai/{MODEL}
              api_base: {fake_url}/v1
              api_key: {FAKE_KEY}
        litellm_settings:
          telemetry: false
          drop_params: true
        """))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITELLM_"))}
    env.update({"LITELLM_TELEMETRY": "False", "LITELLM_LOG": "ERROR", "PYTHONUNBUFFERED": "1",
                "DISABLE_SCHEMA_UPDATE": "True", "NO_DOCS": "True",
                # no auth on either side, as the kdeps agent has none (local bench only)
                "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true"})
    service = Service("litellm", [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port",
                                  str(port), "--num_workers", "1"], port, env=env, cwd=work, logdir=work)

    def ready() -> bool:
        if not accepts(port):
            return False
        import urllib.request

        try:
            with urllib.request.urlopen(f"{service.url}/health/liveliness", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        return service.start(timeout, ready=ready)
    except RuntimeError as err:
        raise Unavailable(f"the LiteLLM proxy did not start: {str(err)[-300:]}") from None


# -- load generation --------------------------------------------------------------------------------

@dataclass
class Target:
    """One thing to send requests to: URL, JSON body and a check of the answer."""

    name: str
    url: str
    body: dict[str, Any]
    check: Callable[[Any], bool]
    headers: dict[str, str] = field(default_factory=dict)


def kdeps_target(name: str, base: str, expect: str = ANSWER_TEXT) -> Target:
    return Target(name, base + "/api/v1/run", {"q": "What is the capital of France?"},
                  lambda data: isinstance(data, dict) and expect in str(data.get("data", {})))


def openai_target(name: str, base: str) -> Target:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "What is the capital of France?"}]}
    return Target(name, base + "/v1/chat/completions", body,
                  lambda data: data["choices"][0]["message"]["content"] == ANSWER_TEXT,
                  {"Authorization": f"Bearer {FAKE_KEY}"})


@dataclass
class Load:
    latencies: list[float]
    errors: int
    elapsed: float
    sample_error: str = ""

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


async def fire(session: Any, target: Target, total: int, concurrency: int) -> Load:
    """`total` requests to `target`, `concurrency` in flight; latency of each, errors counted."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    sample = ""
    remaining = iter(range(total))

    async def worker() -> None:
        nonlocal errors, sample
        for _ in remaining:
            began = time.perf_counter()
            try:
                async with session.post(target.url, json=target.body, headers=target.headers) as r:
                    data = await r.json(content_type=None)
                    good = r.status == 200 and target.check(data)
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, IndexError, TypeError) as err:
                good, data = False, repr(err)
            latencies.append(time.perf_counter() - began)
            if not good:
                errors += 1
                sample = sample or str(data)[:300]

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Load(latencies, errors, time.perf_counter() - began, sample)


async def alternate(targets: list[Target], calls: int | dict[str, int], concurrency: int, trials: int,
                    *, warmup: int = 50, strict: bool = True) -> dict[str, list[Load]]:
    """Each target's load of each trial: `calls` requests (per target when a dict) at `concurrency`,
    after a warm-up, the order of the targets alternating between trials so neither always goes
    first on a noisy machine. `strict`: a request that fails stops the bench."""
    out: dict[str, list[Load]] = {t.name: [] for t in targets}
    async with client_session(concurrency) as session:
        for t in targets:  # connections, lazy imports, caches
            warm = await fire(session, t, warmup, concurrency)
            if warm.errors:
                raise RuntimeError(f"{t.name} fails: {warm.sample_error}")
        for trial in range(trials):
            for t in targets if trial % 2 == 0 else list(reversed(targets)):
                total = calls[t.name] if isinstance(calls, dict) else calls
                load = await fire(session, t, total, concurrency)
                if strict and load.errors:
                    raise RuntimeError(f"{t.name}: {load.errors} errors, e.g. {load.sample_error}")
                out[t.name].append(load)
    return out


def client_session(concurrency: int) -> Any:
    import aiohttp

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max(concurrency, 1) * 2,
                                                                limit_per_host=0),
                                 timeout=aiohttp.ClientTimeout(total=60))


def run_async(coro: Any) -> Any:
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


@contextlib.contextmanager
def services() -> Iterator[list[Service]]:
    """A list to append started services to; all are stopped at the end, whatever happens."""
    started: list[Service] = []
    try:
        yield started
    finally:
        for service in reversed(started):
            service.stop()
