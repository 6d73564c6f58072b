"""The data one request's expressions can see: the host functions (`get`, `set`, `info`, ...) and
the `input` / `request` objects. One `RequestState` per request; one `Scope` per resource (and per
item iteration). Build an expression environment with `Scope.env()`."""

from __future__ import annotations

import difflib
import fnmatch
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from kdeps.engine.request import RequestData, UploadedFile, find_upload
from kdeps.errors import ExprError
from kdeps.expr import Env

# get(key, hint): the second argument is a source hint when it is one of these, else a default value.
HINTS = frozenset({"param", "query", "body", "header", "session", "memory", "item", "loop", "env", "file",
                   "filepath", "filetype", "itemvalues", "output", "data"})
MISSING = object()
_FILE_TEXT_CAP = 10 * 1024 * 1024


@dataclass
class ResourceRecord:
    """What a finished resource left behind: its output and action metadata (llm usage, stdout…)."""

    output: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    item_values: list[Any] | None = None


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """The workflow's metadata as `info('name')`, `info('version')`, `info('description')` read it."""

    name: str = ""
    version: str = ""
    description: str = ""
    target: str = ""

    def namespace(self) -> dict[str, Any]:
        """The `workflow` object of expressions: `workflow.metadata.name`, ..."""
        metadata = {"name": self.name, "version": self.version, "description": self.description,
                    "targetActionId": self.target}
        return {"metadata": metadata, **metadata}


@dataclass
class RequestState:
    request: RequestData
    env: Mapping[str, str]
    records: dict[str, ResourceRecord] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    session_changed: bool = False
    started: float = field(default_factory=time.time)
    agent: AgentInfo = field(default_factory=AgentInfo)


class Scope:
    """Host functions for one resource run. `items` holds the iteration (or tool arguments)."""

    def __init__(self, state: RequestState, resource_id: str, run: Any = None,
                 items: dict[str, Any] | None = None, error: dict[str, Any] | None = None) -> None:
        self.state = state
        self.resource_id = resource_id
        self.items = items or {}
        self.error = error
        self.loop: LoopState | None = None
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

    def _upload(self, key: str) -> UploadedFile | None:
        return find_upload(self.state.request.files, key)

    def _metadata(self, key: str) -> Any:
        getter = _INFO.get(key)
        if getter is None:
            return MISSING
        value = getter(self)
        return MISSING if value is None or value == "" else value

    def get(self, key: Any, hint: Any = None, *rest: Any) -> Any:
        key = str(key)
        if hint is not None and hint in HINTS:
            value = self._by_hint(key, hint)
            default = rest[0] if rest else None
            return default if value is MISSING or value is None else value
        if key.startswith(_NAMESPACES):  # `get('workflow.metadata.name')`, `get('config.llm.model', 'x')`
            value = _walk(ScopeVariables(self).get(key.split(".", 1)[0]), key.split(".")[1:])
            if value is not None:
                return value
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
        if hint is None:  # a default the author wrote wins over request metadata ('name', 'path'...)
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
        if hint == "loop":
            return self.loop.vars.get(key, MISSING) if self.loop is not None else MISSING
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
        elif storage == "loop" and self.loop is not None:
            self.loop.vars[str(key)] = value
        elif storage in ("memory", "item", "loop"):
            self.state.memory[str(key)] = value
        else:
            raise ValueError(f"set(): storage must be 'memory', 'session' or 'loop', not {storage!r}")
        return value

    def info(self, key: Any) -> Any:
        """Request and workflow metadata, KDeps' `info()` keys (see `_INFO`); an unknown key is an
        error that lists the valid ones."""
        getter = _INFO.get(str(key))
        if getter is None:
            close = difflib.get_close_matches(str(key), _INFO_KEYS, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ExprError(f"info(): unknown key '{key}'{hint}; valid keys: {', '.join(_INFO_KEYS)}")
        return getter(self)

    def request_data(self) -> dict[str, Any]:
        """Body fields, query parameters and headers in one mapping (later sources win), filtered by
        the resource's allowed params and headers: what input validation checks."""
        req = self.state.request
        data: dict[str, Any] = {}
        sources: list[tuple[Mapping[str, Any], set[str] | None]] = [
            (req.body if isinstance(req.body, Mapping) else {}, self.allowed_params),
            (req.query, self.allowed_params),
            (req.headers, self.allowed_headers),
        ]
        for source, allowed in sources:
            for key, value in source.items():
                if allowed is None or (key.lower() if source is req.headers else key) in allowed:
                    data[key] = value
        return data

    def file(self, pattern: str, selector: str = "all") -> Any:
        if selector == "all" and not any(c in pattern for c in "*?"):
            named = self._upload(pattern)
            if named is not None:
                return _read_text(named.path)
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
        """`input(name)`, `input(name, 'param'|'query'|'header'|'body')`; any other second argument is
        a default, as with get() (upstream examples write `input('format', 'json')`)."""
        req = self.state.request
        if kind is not None and kind not in _INPUT_KINDS:
            value = self.input(name)
            return kind if value is None or value == "" else value
        if name == "body" and kind is None:
            return req.body
        if kind == "header":
            value = self._header(name)
        elif kind in ("body", "data"):
            value = req.body.get(name, MISSING) if isinstance(req.body, Mapping) else MISSING
        else:
            value = self._param(name)
        return None if value is MISSING else value

    def env_var(self, name: str, default: Any = None) -> Any:
        """`env('NAME')`: an environment variable of the agent (agentSettings.env or the process)."""
        value = self.state.env.get(str(name))
        return default if value is None else value

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

    def env(self, variables: Mapping[str, Any] | None = None) -> Env:
        """The expression environment of this scope: host functions, the `input` and `request`
        objects, and `variables` (e.g. `error` in onError blocks), which win over both."""
        return Env(functions=HostFunctions(self), variables=ScopeVariables(self, variables))

    def request_object(self) -> dict[str, Any]:
        """`request.method`, `.path`, `.headers`, `.query`, `.body`, `.IP`, `.ID` as data; its
        methods (`request.file('x')`, ...) are host functions (`_request_methods`)."""
        req = self.state.request
        return {"method": req.method, "path": req.path, "headers": _Headers(req.headers),
                "query": dict(req.query), "body": req.body, "IP": req.client_ip, "ID": req.request_id}

    def input_object(self) -> Any:
        """`input`: the request body, `{}` when there is none (so `input.name` is nil, not an error)."""
        body = self.state.request.body
        return body if isinstance(body, Mapping) else {}

    def _request_methods(self) -> dict[str, Callable[..., Any]]:
        req = self.state.request

        def upload_field(attr: str) -> Callable[[Any], Any]:
            def read(name: Any) -> Any:
                upload = self._upload(str(name))
                return getattr(upload, attr) if upload is not None else None
            return read

        def file_text(name: Any) -> Any:
            upload = self._upload(str(name))
            return _read_text(upload.path) if upload is not None else None

        def by_type(mime: Any) -> list[str]:
            return [f.path for f in req.files if fnmatch.fnmatch(f.mime, str(mime))]

        def header(name: Any) -> Any:
            return req.headers.get(str(name).lower())

        return {
            "file": file_text, "filepath": upload_field("path"), "filetype": upload_field("mime"),
            "filesByType": by_type, "filecount": lambda: len(req.files),
            "files": lambda: [f.path for f in req.files],
            "filetypes": lambda: [f.mime for f in req.files],
            "filenames": lambda: [f.filename for f in req.files],
            "data": self.input_object, "params": lambda name: req.query.get(str(name)), "header": header,
        }

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
_NAMES = frozenset((*_PLAIN, "env", "item", "loop", "request", *_ACCESSORS))


class HostFunctions(Mapping[str, Any]):
    """The host functions of one scope, built only when an expression looks one up: the engine makes
    a scope per resource run, and most expressions use one or two of these names."""

    __slots__ = ("_accessors", "_scope")

    def __init__(self, scope: Scope) -> None:
        self._scope = scope
        self._accessors: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        scope = self._scope
        if name in _PLAIN:
            return getattr(scope, name)
        if name == "request":
            return scope._request_methods()
        if name == "env":
            return scope.env_var
        if name == "item":
            return _CallableNamespace(scope.item, {
                "current": lambda: scope.items.get("current"),
                "prev": lambda: scope.items.get("prev"),
                "next": lambda: scope.items.get("next"),
                "index": lambda: scope.items.get("index"),
                "count": lambda: scope.items.get("count"),
                "values": scope.item_values,
            })
        if name == "loop":
            loop = scope.loop
            return {
                "index": lambda: loop.index if loop else None,
                "count": lambda: loop.index + 1 if loop else None,
                "results": lambda: list(loop.results) if loop else [],
            }
        namespace: dict[str, Callable[..., Any]] | None = self._accessors.get(name)
        if namespace is not None:  # `llm.response('a')` in several fields: one namespace per scope
            return namespace
        members = _ACCESSORS.get(name)
        if members is None:
            raise KeyError(name)
        namespace = {member: partial(_recorded, scope, key) for member, key in members.items()}
        if name == "http":
            namespace["responseHeader"] = scope.response_header
        self._accessors[name] = namespace
        return namespace

    def __contains__(self, name: object) -> bool:
        return name in _NAMES

    def __iter__(self) -> Iterator[str]:
        return iter(_NAMES)

    def __len__(self) -> int:
        return len(_NAMES)


class ScopeVariables(Mapping[str, Any]):
    """The identifiers an expression sees: `input` and `request`, built only when read, under the
    caller's own variables."""

    __slots__ = ("_extra", "_scope")

    def __init__(self, scope: Scope, extra: Mapping[str, Any] | None = None) -> None:
        self._scope = scope
        self._extra = extra or {}

    def __getitem__(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        if name == "input":
            return self._scope.input_object()
        if name == "request":
            return self._scope.request_object()
        if name == "workflow":
            return self._scope.state.agent.namespace()
        if name == "config":
            return user_config()
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        return name in self._extra or name in _OBJECTS

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(_OBJECTS), **dict.fromkeys(self._extra)})

    def __len__(self) -> int:
        return len(set(self._extra) | set(_OBJECTS))


_OBJECTS = ("input", "request", "workflow", "config")
KNOWN_NAMES = Env(functions=dict.fromkeys(_NAMES, len), variables=dict.fromkeys(_OBJECTS))
"""The names every action-time environment knows (host functions and objects; `item` is one of the
functions; the values are placeholders): what decides whether a plain string is a bare expression
there."""
_INPUT_KINDS = frozenset({"param", "query", "header", "body", "data"})
_NAMESPACES = ("workflow.", "config.")


@dataclass
class LoopState:
    """A `loop:` resource's iteration: `loop.index()`, `loop.results()`, `get(k, 'loop')`."""

    index: int = 0
    results: list[Any] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)


def _walk(value: Any, path: list[str]) -> Any:
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


_CONFIG_CACHE: dict[str, Any] = {}


def user_config() -> dict[str, Any]:
    """`config`: the user's ~/.kdeps/config.yaml (KDEPS_CONFIG names another file), read once;
    empty when there is none or it is not a mapping."""
    path = Path(os.environ.get("KDEPS_CONFIG") or Path.home() / ".kdeps" / "config.yaml")
    key = str(path)
    if key not in _CONFIG_CACHE:
        data: Any = None
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:  # the user's file, not the request's
            logging.getLogger("kdeps.engine").warning("cannot read %s: %s", path, exc)
        _CONFIG_CACHE[key] = data if isinstance(data, dict) else {}
    config: dict[str, Any] = _CONFIG_CACHE[key]
    return config


class _Headers(dict[str, Any]):
    """Request headers (kept lower-cased) read in any case: `request.headers.Authorization` and
    `request.headers['content-type']` both work, as with Go's canonical header names."""

    def get(self, key: Any, default: Any = None) -> Any:
        return super().get(key.lower() if isinstance(key, str) else key, default)

    def __getitem__(self, key: Any) -> Any:
        return super().__getitem__(key.lower() if isinstance(key, str) else key)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


def _request(attr: str) -> Callable[[Scope], Any]:
    return lambda scope: getattr(scope.state.request, attr)


def _agent(attr: str) -> Callable[[Scope], Any]:
    return lambda scope: getattr(scope.state.agent, attr)


def _item(key: str) -> Callable[[Scope], Any]:
    return lambda scope: scope.items.get(key)


def _now_rfc3339(scope: Scope) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# info() keys: every key KDeps' engine knows, then the aliases its documentation also uses.
_INFO: dict[str, Callable[[Scope], Any]] = {
    "name": _agent("name"), "version": _agent("version"), "description": _agent("description"),
    "workflow.name": _agent("name"), "workflow.version": _agent("version"),
    "workflow.description": _agent("description"),
    "method": _request("method"), "path": _request("path"),
    "request.method": _request("method"), "request.path": _request("path"),
    "IP": _request("client_ip"), "request.IP": _request("client_ip"),
    "ID": _request("request_id"), "request.ID": _request("request_id"), "request_id": _request("request_id"),
    "current_time": _now_rfc3339, "timestamp": _now_rfc3339,
    "session_id": lambda scope: scope.state.request.session_id or "",
    "sessionId": lambda scope: scope.state.request.session_id or "",
    "filecount": lambda scope: len(scope.state.request.files),
    "files": lambda scope: [f.path for f in scope.state.request.files],
    "filenames": lambda scope: [f.filename for f in scope.state.request.files],
    "filetypes": lambda scope: [f.mime for f in scope.state.request.files],
    "index": _item("index"), "count": _item("count"), "current": _item("current"),
    "prev": _item("prev"), "next": _item("next"),
}
_INFO_KEYS = sorted(_INFO, key=str.lower)  # named in the unknown-key error
# aliases: this implementation's earlier names, and names KDeps' documentation uses
_INFO |= {
    "requestId": _request("request_id"), "request.id": _request("request_id"),
    "clientIp": _request("client_ip"), "route": _request("route"),
    "now": _now_rfc3339, "time": _now_rfc3339,
    "resourceId": lambda scope: scope.resource_id,
}


def _recorded(scope: Scope, key: str, resource_id: str) -> Any:
    return scope.meta(resource_id, key)


class _CallableNamespace(dict[str, Callable[..., Any]]):
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

