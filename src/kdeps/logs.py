"""How kdeps logs: human-readable lines on a terminal, one JSON object per line otherwise.

Levels: the default shows requests and warnings; `verbose` adds each resource's status and duration
(logger `kdeps.run`); `debug` shows everything. `KDEPS_DEBUG=1`, `KDEPS_VERBOSE=1` and
`KDEPS_LOG_FORMAT=auto|text|json` set the same from the environment (and reach worker processes)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import IO, Any

from kdeps import fastjson

LEVELS = ("warning", "info", "verbose", "debug")
FORMATS = ("auto", "text", "json")

_FIELDS = ("requestId", "resource", "status", "durationMs", "file", "line")


def level_from_env(default: str = "info") -> str:
    """`debug` when KDEPS_DEBUG is set, `verbose` for KDEPS_VERBOSE, else `default`."""
    if _truthy(os.environ.get("KDEPS_DEBUG")):
        return "debug"
    if _truthy(os.environ.get("KDEPS_VERBOSE")):
        return "verbose" if default in ("info", "warning") else default
    return default


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def use_json(fmt: str, stream: IO[str]) -> bool:
    if fmt == "auto":
        fmt = os.environ.get("KDEPS_LOG_FORMAT", "auto").lower()
    if fmt == "json":
        return True
    if fmt == "text":
        return False
    isatty = getattr(stream, "isatty", None)
    return not (isatty and isatty())


def _timestamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created * 1000) % 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and the record's structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = getattr(record, "entry", None)
        if isinstance(entry, dict):  # an access line: already structured
            return self.entry_line(entry, record.created)
        out: dict[str, Any] = {"ts": _timestamp(record.created), "level": record.levelname.lower(),
                               "logger": record.name, "msg": record.getMessage()}
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))

    @staticmethod
    def entry_line(entry: dict[str, Any], created: float) -> str:
        """An access entry as its line (`created`: when it happened, epoch seconds)."""
        return _ascii_json(entry)


def _ascii_json(entry: dict[str, Any]) -> str:
    """`json.dumps(entry, default=str, separators=(",", ":"))`, through orjson when that gives the
    same text: unless there is non-ASCII text to escape or a null (maybe a NaN); an access entry's
    numbers (status, bytes, durationMs rounded to 0.01) never need an exponent."""
    data = fastjson.dumps(entry, default=str)
    if data.isascii() and b"null" not in data:
        return data.decode("ascii")
    return json.dumps(entry, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """`12:00:01 POST /api 200 12.3ms` for requests; `12:00:01 WARNING message` otherwise."""

    def format(self, record: logging.LogRecord) -> str:
        entry = getattr(record, "entry", None)
        if isinstance(entry, dict):
            return self.entry_line(entry, record.created)
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno == logging.INFO else f"{record.levelname} "
        text = f"{clock} {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text

    @staticmethod
    def entry_line(entry: dict[str, Any], created: float) -> str:
        """An access entry as its line (`created`: when it happened, epoch seconds)."""
        return f"{time.strftime('%H:%M:%S', time.localtime(created))} {access_text(entry)}"


def access_text(entry: dict[str, Any]) -> str:
    """An access-log entry as one readable line."""
    line = (f"{entry.get('method')} {entry.get('path')} {entry.get('status')} "
            f"{entry.get('durationMs')}ms")
    error = entry.get("error")
    if isinstance(error, dict):
        where = f"resource '{error['resource']}': " if error.get("resource") else ""
        line += f"  {where}{error.get('message')}"
    return line + f"  [{entry.get('requestId')}]"


def configure(level: str = "info", fmt: str = "auto", stream: IO[str] | None = None) -> None:
    """Route kdeps' and uvicorn's loggers to `stream` (stderr) at `level`, in `fmt`."""
    stream = stream or sys.stderr
    level = level_from_env(level)
    # Nothing here shows the caller's file, thread or process: spare every record finding them.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # the documented switch that skips findCaller
    handler = _Handler(stream)
    handler.setFormatter(JsonFormatter() if use_json(fmt, stream) else TextFormatter())
    numeric = {"warning": logging.WARNING, "info": logging.INFO, "verbose": logging.INFO,
               "debug": logging.DEBUG}.get(level, logging.INFO)
    for name, wanted in (("kdeps", numeric), ("kdeps.access", logging.INFO if level != "warning"
                                               else logging.WARNING),
                         ("kdeps.run", logging.INFO if level in ("verbose", "debug") else logging.WARNING),
                         ("uvicorn", logging.DEBUG if level == "debug" else logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler] if "." not in name else []
        logger.setLevel(wanted)
        logger.propagate = "." in name  # kdeps.access and kdeps.run go through kdeps' handler


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure` installs; `access` writes through it directly."""


_ACCESS = logging.getLogger("kdeps.access")
_KDEPS = logging.getLogger("kdeps")


class _EntryText:
    """An access entry's JSON text, made only if a handler asks for the record's message."""

    __slots__ = ("entry",)

    def __init__(self, entry: dict[str, Any]) -> None:
        self.entry = entry

    def __str__(self) -> str:
        return _ascii_json(self.entry)


def access(entry: dict[str, Any]) -> None:
    """Log one access entry at INFO (the caller checked that `kdeps.access` is enabled). When the
    handler `configure` installed is the only one listening, the line goes straight through it,
    without building a LogRecord; otherwise through `logging` as usual. The line is the same."""
    handlers = _KDEPS.handlers
    handler = handlers[0] if len(handlers) == 1 else None
    if (type(handler) is _Handler and not handler.filters and handler.level <= logging.INFO
            and not _ACCESS.handlers and not _ACCESS.filters and _ACCESS.propagate and not _KDEPS.filters
            and not _KDEPS.propagate and isinstance(handler.formatter, JsonFormatter | TextFormatter)):
        text = handler.formatter.entry_line(entry, time.time()) + handler.terminator
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.flush()
            return
        except Exception:  # a closed or broken stream: let logging report it as it does
            pass
        finally:
            handler.release()
    _ACCESS.info(_EntryText(entry), extra={"entry": entry})
