"""The data one request's expressions can see, and the host functions (`get`, `set`, `info`, ...)
that read it. One `RequestState` per request; one `Scope` per resource (and per item iteration)."""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from kdeps.engine.request import RequestData

# get(key, hint): the second argument is a source hint when it is one of these, else a default value.
HINTS = frozenset({"param", "query", "body", "header", "session", "memory", "item", "env", "file",
                   "filepath", "filetype", "itemvalues", "output", "data"})
MISSING = object()
_FILE_TEXT_CAP = 10 * 1024 * 1024


@dataclass
class ResourceRecord:
    """What a finished resource left behind: its output and action metadata (llm usage, stdout…)."""

    output: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    item_values: list[Any] | None = None


@dataclass
class RequestState:
    request: RequestData
    env: Mapping[str, str]
    records: dict[str, ResourceRecord] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    session_changed: bool = False
    started: float = field(default_factory=time.time)


class Scope:
    """Host functions for one resource run. `items` holds the iteration (or tool arguments)."""

    def __init__(self, state: RequestState, resource_id: str, run: Any = None,
                 items: dict[str, Any] | None = None, error: dict[str, Any] | None = None) -> None:
        self.state = state
        self.resource_id = resource_id
        self.items = items or {}
        self.error = error
        allowed_headers = getattr(run, "allowed_headers", None) if run is not None else None
        allowed_params = getattr(run, "allowed_params", None) if run is not None else None
        self.allowed_headers = {h.lower() for h in allowed_headers} if allowed_headers else None
        self.allowed_params = set(allowed_params) if allowed_params else None

    # -- sources ---------------------------------------------------------------------------------
    def _param(self, key: str) -> Any:
        if self.allowed_params is not None and key not in self.allowed_params:
            return MISSING
        req = self.state.request
        if key in req.path_params:
            return req.path_params[key]
        if key in req.query:
            return req.query[key]
        if isinstance(req.body, Mapping) and key in req.body:
            return req.body[key]
        return MISSING

    def _header(self, key: str) -> Any:
        lower = key.lower()
        if self.allowed_headers is not None and lower not in self.allowed_headers:
            return MISSING
        return self.state.request.headers.get(lower, MISSING)

    def _upload(self, key: str):
        for f in self.state.request.files:
            if key in (f.field, f.filename):
                return f
        return None

    def _metadata(self, key: str) -> Any:
        value = self.info(key)
        return MISSING if value is None else value

    def get(self, key: Any, hint: Any = None, *rest: Any) -> Any:
        key = str(key)
        if hint is not None and hint in HINTS:
            value = self._by_hint(key, hint)
            default = rest[0] if rest else None
            return default if value is MISSING or value is None else value
        for source in (self.items, self.state.memory, self.state.request.session):
            if key in source:
                return source[key]
        record = self.state.records.get(key)
        if record is not None:
            return record.output
        for lookup in (self._param, self._header):
            value = lookup(key)
            if value is not MISSING:
                return value
        upload = self._upload(key)
        if upload is not None:
            return upload.path
        value = self._metadata(key)
        if value is not MISSING:
            return value
        return hint  # KDeps: get('page', '1') -> '1' when nothing is found

    def _by_hint(self, key: str, hint: str) -> Any:
        state = self.state
        if hint in ("param", "query", "body"):
            return self._param(key)
        if hint == "data":
            body = state.request.body
            return body.get(key, MISSING) if isinstance(body, Mapping) else MISSING
        if hint == "header":
            return self._header(key)
        if hint == "session":
            return state.request.session.get(key, MISSING)
        if hint == "memory":
            return state.memory.get(key, MISSING)
        if hint == "item":
            return self.items.get(key, MISSING)
        if hint == "env":
            return state.env.get(key, MISSING)
        if hint == "output":
            record = state.records.get(key)
            return record.output if record else MISSING
        if hint == "itemvalues":
            record = state.records.get(key)
            return record.item_values if record and record.item_values is not None else MISSING
        upload = self._upload(key)
        if upload is None:
            return MISSING
        if hint == "filepath":
            return upload.path
        if hint == "filetype":
            return upload.mime
        return _read_text(upload.path)

    def set(self, key: Any, value: Any, storage: str = "memory") -> Any:
        if storage == "session":
            self.state.request.session[str(key)] = value
            self.state.session_changed = True
        elif storage in ("memory", "item"):
            self.state.memory[str(key)] = value
        else:
            raise ValueError(f"set(): storage must be 'memory' or 'session', not {storage!r}")
        return value

    def info(self, field_name: str) -> Any:
        req = self.state.request
        files = req.files
        values: dict[str, Callable[[], Any]] = {
            "requestId": lambda: req.request_id,
            "timestamp": lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "path": lambda: req.path,
            "route": lambda: req.route,
            "method": lambda: req.method,
            "clientIp": lambda: req.client_ip,
            "sessionId": lambda: req.session_id,
            "filecount": lambda: len(files),
            "files": lambda: [f.path for f in files],
            "filenames": lambda: [f.filename for f in files],
            "filetypes": lambda: [f.mime for f in files],
            "resourceId": lambda: self.resource_id,
        }
        getter = values.get(str(field_name))
        return getter() if getter else None

    def file(self, pattern: str, selector: str = "all") -> Any:
        matches = [f for f in self.state.request.files
                   if fnmatch.fnmatch(f.filename, pattern) or fnmatch.fnmatch(f.field, pattern)]
        if selector.startswith("mime:"):
            matches = [f for f in matches if fnmatch.fnmatch(f.mime, selector[5:])]
            selector = "all"
        if selector == "count":
            return len(matches)
        if selector == "first":
            return _read_text(matches[0].path) if matches else None
        if selector == "last":
            return _read_text(matches[-1].path) if matches else None
        if len(matches) == 1 and not any(c in pattern for c in "*?["):
            return _read_text(matches[0].path)
        return [_read_text(f.path) for f in matches]

    def input(self, name: str, kind: str | None = None) -> Any:
        req = self.state.request
        if name == "body" and kind is None:
            return req.body
        if kind == "header":
            value = self._header(name)
        elif kind == "body":
            value = req.body.get(name, MISSING) if isinstance(req.body, Mapping) else MISSING
        else:
            value = self._param(name)
        return None if value is MISSING else value

    def output(self, resource_id: str) -> Any:
        record = self.state.records.get(resource_id)
        return record.output if record else None

    def item(self, kind: str = "current") -> Any:
        if kind == "values":
            return self.items.get("all")
        return self.items.get(kind)

    def item_values(self, resource_id: str | None = None) -> Any:
        if resource_id is None:
            return self.items.get("all")
        record = self.state.records.get(resource_id)
        return record.item_values if record else None

    def session(self) -> dict[str, Any]:
        return dict(self.state.request.session)

    def meta(self, resource_id: str, key: str) -> Any:
        record = self.state.records.get(resource_id)
        return record.meta.get(key) if record else None

    # -- the table handed to the expression language ----------------------------------------------
    def functions(self) -> HostFunctions:
        return HostFunctions(self)

    def response_header(self, resource_id: str, name: str) -> Any:
        headers = self.meta(resource_id, "headers") or {}
        lower = name.lower()
        return next((v for k, v in headers.items() if k.lower() == lower), None)


# namespace -> member -> the meta key a resource's action recorded it under
_ACCESSORS = {
    "llm": {"response": "response", "prompt": "prompt", "usage": "usage"},
    "http": {"responseBody": "body", "statusCode": "statusCode"},
    "python": {"stdout": "stdout", "stderr": "stderr", "exitCode": "exitCode"},
    "exec": {"stdout": "stdout", "stderr": "stderr", "exitCode": "exitCode"},
}
_PLAIN = ("get", "set", "info", "file", "input", "output", "session")
_NAMES = frozenset((*_PLAIN, "item", *_ACCESSORS))


class HostFunctions(Mapping[str, Any]):
    """The host functions of one scope, built only when an expression looks one up: the engine makes
    a scope per resource run, and most expressions use one or two of these names."""

    __slots__ = ("_scope",)

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def __getitem__(self, name: str) -> Any:
        scope = self._scope
        if name in _PLAIN:
            return getattr(scope, name)
        if name == "item":
            return _CallableNamespace(scope.item, {
                "current": lambda: scope.items.get("current"),
                "prev": lambda: scope.items.get("prev"),
                "next": lambda: scope.items.get("next"),
                "index": lambda: scope.items.get("index"),
                "count": lambda: scope.items.get("count"),
                "values": scope.item_values,
            })
        members = _ACCESSORS.get(name)
        if members is None:
            raise KeyError(name)
        namespace: dict[str, Callable[..., Any]] = {
            member: partial(_recorded, scope, key) for member, key in members.items()}
        if name == "http":
            namespace["responseHeader"] = scope.response_header
        return namespace

    def __contains__(self, name: object) -> bool:
        return name in _NAMES

    def __iter__(self) -> Iterator[str]:
        return iter(_NAMES)

    def __len__(self) -> int:
        return len(_NAMES)


def _recorded(scope: Scope, key: str, resource_id: str) -> Any:
    return scope.meta(resource_id, key)


class _CallableNamespace(dict):
    """`item('current')` and `item.current()` are both KDeps: a namespace that can also be called."""

    def __init__(self, call: Callable[..., Any], members: dict[str, Callable[..., Any]]) -> None:
        super().__init__(members)
        self._call = call

    def __call__(self, *args: Any) -> Any:
        return self._call(*args)


def _read_text(path: str) -> str | None:
    p = Path(path)
    if not p.is_file():
        return None
    data = p.read_bytes()[:_FILE_TEXT_CAP]
    return data.decode("utf-8", errors="replace")


def agent_env(agent_env_settings: Mapping[str, str] | None) -> dict[str, str]:
    """The environment an agent sees: agentSettings.env as defaults, real environment variables
    winning (so a key passed at run time replaces a blank placeholder in the workflow)."""
    merged = {k: str(v) for k, v in (agent_env_settings or {}).items()}
    merged.update(os.environ)
    return merged

