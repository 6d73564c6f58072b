"""Start `kdeps run` as a user would (a subprocess on a free port), wait until it answers, always stop it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parents[1] / "data" / "server"
READY_LINE = "Starting API server on"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int, timeout: float = 0.2) -> bool:
    """Whether something on 127.0.0.1:`port` accepts a connection now."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
        return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float = 15, step: float = 0.05) -> bool:
    """Poll `check` until it is true (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A private redis-server on a free port (its files under `folder`): yields its URL. Skips the
    test when redis-server is not installed (`.ci/run` installs it)."""
    exe = shutil.which("redis-server")
    if exe is None:
        import pytest

        pytest.skip("redis-server is not on PATH (CI installs it from the OS packages: see .ci/run)")
    port = free_port()
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(folder)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_until(lambda: accepts(port)):
            raise RuntimeError(f"redis-server did not listen on {port} within 15 s")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


def kdeps_argv() -> list[str]:
    script = Path(sys.executable).parent / "kdeps"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from kdeps.cli.main import main; main()"]


def copy_agent(name: str, dest: Path, patch: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Copy fixture agent `name` to `dest`; `patch` may edit the parsed workflow.yaml in place."""
    target = dest / name
    shutil.copytree(DATA / name, target)
    if patch is not None:
        workflow_file = target / "workflow.yaml"
        workflow = yaml.safe_load(workflow_file.read_text())
        patch(workflow)
        workflow_file.write_text(yaml.safe_dump(workflow, sort_keys=False))
    return target


class KdepsServer:
    """`kdeps run AGENT --port N` with output captured to files (a full pipe would stall the server)."""

    def __init__(self, agent: Path, *args: str, env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.agent = agent
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.logdir = agent.parent / f"logs-{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def stdout(self) -> str:
        return (self.logdir / "stdout").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.logdir / "stderr").read_text(errors="replace")

    def start(self, timeout: float = 20) -> KdepsServer:
        self.logdir.mkdir(exist_ok=True)
        argv = [*kdeps_argv(), "run", str(self.agent), "--port", str(self.port), *self.args]
        with open(self.logdir / "stdout", "wb") as out, open(self.logdir / "stderr", "wb") as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err, env=self.env, cwd=self.agent.parent,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"kdeps run exited with {code}:\n{self.stdout}\n{self.stderr}")
            if READY_LINE in self.stdout and accepts(self.port):
                return self
            time.sleep(0.03)
        self.stop()
        raise RuntimeError(f"kdeps run was not ready after {timeout}s:\n{self.stdout}\n{self.stderr}")

    def terminate(self) -> None:
        """SIGTERM: the graceful path (in-flight requests finish)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 15) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: workers go too
            self.proc.wait(5)


@asynccontextmanager
async def serving(app: Any, **config: Any) -> AsyncIterator[int]:
    """`app` on uvicorn in this event loop on a free 127.0.0.1 port, lifespan on (as `kdeps run` serves
    it, with `config` passed to uvicorn.Config): yields the port once it listens."""
    import asyncio

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           log_level="warning", lifespan="on", **config))
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started and not task.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    if not server.started:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        raise RuntimeError("the app did not start on uvicorn within 10 s")
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextmanager
def running(agent: Path, *args: str, **kwargs: Any) -> Iterator[KdepsServer]:
    server = KdepsServer(agent, *args, **kwargs)
    try:
        yield server.start()
    finally:
        server.stop()
