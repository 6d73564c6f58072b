"""`kdeps run --dev`: one process that rebuilds the app when an agent file changes and swaps it in
only when it loads; a broken edit is logged once and the last good version keeps answering."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kdeps.errors import HTTPError, KdepsError, SpecErrors

log = logging.getLogger("kdeps.dev")

WATCHED_SUFFIXES = (".yaml", ".yml", ".j2", ".py")

Scope = dict[str, Any]


class Lifespan:
    """Drives one ASGI app's lifespan protocol by hand (startup now, shutdown later)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await self._inbox.put({"type": "lifespan.startup"})
        reply = await self._outbox.get()
        if reply["type"] != "lifespan.startup.complete":
            raise KdepsError(str(reply.get("message") or "the app failed to start"))

    async def stop(self) -> None:
        if self._task is None or self._task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._outbox.get(), timeout=30)
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task

    async def _run(self) -> None:
        try:
            await self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                           self._inbox.get, self._outbox.put)
        except Exception as exc:  # an app without lifespan support, or a failing startup
            await self._outbox.put({"type": "lifespan.startup.failed", "message": str(exc)})


class DevApp:
    """ASGI app that forwards to the current build of the agent and watches its folder."""

    def __init__(self, folder: str | Path, app: Any, build: Callable[[], Any]) -> None:
        self.folder = Path(folder)
        self.current = app
        self.state = getattr(app, "state", None)
        self._build = build
        self._lifespan: Lifespan | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._in_flight: dict[int, int] = {}  # id(app) -> requests it is answering
        self._last_error: str = getattr(app, "error_text", "")  # already logged by waiting_app
        self._retiring: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._serve_lifespan(receive, send)
            return
        app = self.current
        self._in_flight[id(app)] = self._in_flight.get(id(app), 0) + 1
        try:
            await app(scope, receive, send)
        finally:
            self._in_flight[id(app)] -= 1

    async def _serve_lifespan(self, receive: Any, send: Any) -> None:
        await receive()  # lifespan.startup
        try:
            self._lifespan = Lifespan(self.current)
            await self._lifespan.start()
        except Exception as exc:
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        self._watcher = asyncio.create_task(self._watch())
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        self._watcher.cancel()
        with contextlib.suppress(BaseException):
            await self._watcher
        await self._lifespan.stop()
        await send({"type": "lifespan.shutdown.complete"})

    async def _watch(self) -> None:
        from watchfiles import awatch

        def relevant(_change: Any, path: str) -> bool:
            return path.endswith(WATCHED_SUFFIXES)

        async for changes in awatch(self.folder, watch_filter=relevant, debounce=200, step=50):
            names = sorted({Path(p).name for _, p in changes})
            await self.reload(", ".join(names))

    async def reload(self, reason: str = "") -> bool:
        """Build the agent again; swap it in if it loads and starts, else keep the current one."""
        try:
            app = await asyncio.to_thread(self._build)
            lifespan = Lifespan(app)
            await lifespan.start()
        except KdepsError as err:
            self._report(err)
            return False
        except Exception as err:  # a bug while building: still keep serving
            self._report(err)
            return False
        old, old_lifespan = self.current, self._lifespan
        self.current, self._lifespan, self.state = app, lifespan, getattr(app, "state", None)
        self._last_error = ""
        log.info("reloaded after a change to %s", reason or "the agent")
        if old_lifespan is not None:
            task = asyncio.create_task(self._retire(old, old_lifespan))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return True

    async def _retire(self, app: Any, lifespan: Lifespan) -> None:
        """Shut the replaced build down once its in-flight requests (and streams) are done."""
        for _ in range(600):
            if not self._in_flight.get(id(app)):
                break
            await asyncio.sleep(0.5)
        self._in_flight.pop(id(app), None)
        await lifespan.stop()

    def _report(self, err: BaseException) -> None:
        text = _describe(err)
        if text == self._last_error:
            return  # the same mistake saved again: said once is enough
        self._last_error = text
        log.error("not reloaded; still serving the last good version. Fix this and save:\n%s", text)


def _describe(err: BaseException) -> str:
    if isinstance(err, SpecErrors):
        from kdeps.cli.validate import describe

        return "\n".join(f"  {describe(e)}" for e in err.errors)
    if isinstance(err, KdepsError):
        return f"  {err}"
    return f"  {type(err).__name__}: {err}"


def waiting_app(err: BaseException) -> Any:
    """What `--dev` serves while the agent has never loaded: /health answers, everything else is a
    503 naming the mistakes, so a request never hangs."""
    text = _describe(err)
    log.error("the agent has errors; serving 503 until they are fixed and saved:\n%s", text)
    return _Waiting(text)


class _Waiting:
    def __init__(self, error_text: str) -> None:
        self.error_text = error_text
        refusal = HTTPError(503, "the agent has errors; fix them and save",
                            details=[line.strip() for line in error_text.splitlines()])
        self.body = json.dumps(refusal.envelope()).encode()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        if scope["type"] != "http":
            return
        status, payload = (200, b'{"status":"ok"}') if scope["path"] == "/health" else (503, self.body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")]})
        await send({"type": "http.response.body", "body": payload})
