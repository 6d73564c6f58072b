"""Load an agent folder (workflow.yaml + resources/*.yaml) into validated models.

Every problem found is reported, each with file:line:col, as one `SpecErrors`.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from kdeps.errors import ExprError, SpecError, SpecErrors
from kdeps.spec.actions import PRIMARY_ACTIONS, UNSUPPORTED_ACTIONS
from kdeps.spec.check import check_document
from kdeps.spec.graph import cycles
from kdeps.spec.jinja import preprocess, resource_files
from kdeps.spec.placement import key_home
from kdeps.spec.plan import Layout, ResourcePlan, from_flat, from_seed
from kdeps.spec.resources import FlatResource, Resource
from kdeps.spec.workflow import UNSUPPORTED_SETTINGS, Workflow
from kdeps.spec.yamlio import Document, read_documents

WORKFLOW_FILES = ("workflow.yaml", "workflow.yml", "workflow.yaml.j2", "workflow.yml.j2")
_PRIMARY_KEYS = tuple(to_camel(a) for a in PRIMARY_ACTIONS)


@dataclass
class Project:
    """A loaded agent: its workflow and the plan of every resource, plus where each was declared."""

    root: Path
    workflow_file: Path
    workflow: Workflow
    resources: dict[str, ResourcePlan] = field(default_factory=dict)
    locations: dict[str, tuple[Path, int]] = field(default_factory=dict)
    layouts: set[Layout] = field(default_factory=set)
    warnings: list[SpecError] = field(default_factory=list)

    @property
    def target(self) -> ResourcePlan:
        """The resource named by metadata.targetActionId."""
        return self.resources[self.workflow.metadata.target_action_id]


def find_workflow_file(path: str | os.PathLike[str]) -> Path:
    """`path` itself if it is a file, else the workflow.yaml (or .yml) inside the folder `path`."""
    p = Path(path)
    if p.is_dir():
        for name in WORKFLOW_FILES:
            if (p / name).is_file():
                return p / name
        for name, what in (("agency.yaml", "agencies"), ("component.yaml", "components")):
            if (p / name).is_file():
                raise SpecErrors([SpecError(f"{what} ({name}) are not supported by this implementation",
                                            str(p / name))])
        raise SpecErrors([SpecError(f"no workflow.yaml in folder {p}")])
    if not p.exists():
        raise SpecErrors([SpecError(f"no such file or folder: {p}")])
    return p


def load_project(path: str | os.PathLike[str], *, require_target: bool = True) -> Project:
    """Load and validate the agent at `path` (a workflow.yaml or its folder).
    Raises `SpecErrors` listing every error found, sorted by file and line. `require_target=False`
    accepts a workflow without any resources (what `kdeps export k8s` may package)."""
    workflow_file = find_workflow_file(path)
    root_shown = workflow_file.parent
    errors: list[SpecError] = []

    files = [workflow_file]
    res_dir = root_shown / "resources"
    if res_dir.is_dir():
        files += resource_files(res_dir)

    workflow: Workflow | None = None
    workflow_doc: Document | None = None
    entries: list[_Entry] = []
    lost_documents = False  # a YAML syntax error hides documents: don't report names they may define

    for file in files:
        shown = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(SpecError(f"cannot read {shown}: {exc}"))
            continue
        try:  # Jinja2, author-time only (kdeps.spec.jinja)
            text = preprocess(text, shown)
        except SpecError as exc:
            errors.append(exc)
            lost_documents = True
            continue
        in_workflow_file = file == workflow_file
        before = len(errors)
        file_docs = read_documents(text, shown, errors)
        lost_documents |= any(e.message.startswith("YAML") for e in errors[before:])
        for doc in file_docs:
            kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
            if not _check_header(doc, shown, in_workflow_file and workflow_doc is None, errors):
                continue
            if kind == "Workflow" or (kind is None and in_workflow_file and workflow_doc is None):
                if not in_workflow_file:
                    line, col = doc.value_mark(("kind",))
                    msg = "a Workflow document belongs in workflow.yaml, not in resources/"
                    errors.append(SpecError(msg, shown, line, col))
                elif workflow_doc is not None:
                    msg = "more than one Workflow document in workflow.yaml"
                    errors.append(SpecError(msg, shown, doc.line, doc.col))
                else:
                    workflow_doc = doc
                    inline = doc.data.get("resources") if isinstance(doc.data, dict) else None
                    if isinstance(inline, list):  # the current layout may declare resources inline
                        for i, item in enumerate(inline):
                            if item is not None:
                                entries.append(_entry(doc.sub(("resources", i)), file, errors))
                        data = {k: v for k, v in doc.data.items() if k != "resources"}
                        rest = Document(data, doc.line, doc.col, doc.keys, doc.values)
                        workflow = _validate(Workflow, rest, shown, errors)
                    else:
                        workflow = _validate(Workflow, doc, shown, errors)
            else:
                entries.append(_entry(doc, file, errors))

    if workflow_doc is None and not any(e.file == str(workflow_file) for e in errors):
        errors.append(SpecError("workflow.yaml has no Workflow document", str(workflow_file), 1, 1))

    # Cross-resource checks read the raw data, so they also cover documents that failed validation.
    by_id: dict[str, _Entry] = {}
    for entry in entries:
        aid = entry.action_id
        if aid is None:
            continue
        if aid in by_id:
            first = by_id[aid]
            line, col = entry.doc.value_mark((*entry.base, "actionId"))
            msg = f"duplicate actionId '{aid}' (first defined at {first.file}:{first.doc.line})"
            errors.append(SpecError(msg, str(entry.file), line, col))
        else:
            by_id[aid] = entry
    _check_references(by_id, errors, check_names=not lost_documents)
    template_warnings: list[SpecError] = []
    for entry in by_id.values():
        if entry.plan is not None:
            check_document(entry.doc, str(entry.file), entry.actions, set(by_id), errors, template_warnings)
    components = root_shown / "components"
    if components.is_dir():
        msg = "components (the components/ folder) are not supported by this implementation"
        errors.append(SpecError(msg, str(components)))
    if workflow_doc is not None and not lost_documents:
        meta = workflow_doc.data.get("metadata") if isinstance(workflow_doc.data, dict) else None
        target = meta.get("targetActionId") if isinstance(meta, dict) else None
        if isinstance(target, str) and target not in by_id and not (not by_id and (
                _serves_web(workflow_doc) or not require_target)):
            line, col = workflow_doc.value_mark(("metadata", "targetActionId"))
            msg = f"targetActionId '{target}' names no resource" + _known(by_id)
            errors.append(SpecError(msg, str(workflow_file), line, col, _closest(target, by_id)))

    if errors:
        errors.sort(key=lambda e: (e.file != str(workflow_file), e.file, e.line, e.col))
        raise SpecErrors(errors)
    assert workflow is not None
    resources = {aid: e.plan for aid, e in by_id.items() if e.plan is not None}
    return Project(
        root=workflow_file.parent.resolve(),
        workflow_file=workflow_file.resolve(),
        workflow=workflow,
        resources=resources,
        locations={aid: (e.file.resolve(), e.doc.line) for aid, e in by_id.items()},
        layouts={e.layout for e in entries},
        warnings=_warnings(workflow_doc, str(workflow_file), entries) + template_warnings,
    )


# ---------------------------------------------------------------- document header (apiVersion, kind)

_KINDS = ("Workflow", "Resource")
_UNSUPPORTED_KINDS = {"Agency": "agencies", "Component": "components"}


def _check_header(doc: Document, file: str, may_be_workflow: bool, errors: list[SpecError]) -> bool:
    """False (with an error) for a document of an unknown kind; a Workflow without apiVersion is an error."""
    if not isinstance(doc.data, dict):
        return True
    kind = doc.data.get("kind")
    if isinstance(kind, str) and kind not in _KINDS:
        line, col = doc.value_mark(("kind",))
        if kind in _UNSUPPORTED_KINDS:
            msg = f"kind '{kind}': {_UNSUPPORTED_KINDS[kind]} are not supported by this implementation"
            errors.append(SpecError(msg, file, line, col))
        else:
            msg = f"kind: invalid value '{kind}'; expected one of: {', '.join(_KINDS)}"
            errors.append(SpecError(msg, file, line, col, _closest(str(kind), _KINDS)))
        return False
    if (kind == "Workflow" or (kind is None and may_be_workflow)) and "apiVersion" not in doc.data:
        errors.append(SpecError("missing required key 'apiVersion'", file, doc.line, doc.col))
    return True


def _serves_web(doc: Document) -> bool:
    """True when the workflow declares web server routes (an agent may be only a web server)."""
    settings = doc.data.get("settings") if isinstance(doc.data, dict) else None
    web = settings.get("webServer") if isinstance(settings, dict) else None
    return isinstance(web, dict) and bool(web.get("routes"))


def detect_layout(data: Any) -> Layout:
    """`seed-era` for `metadata:`/`run:` documents, `current` for flat ones (top-level actionId)."""
    if isinstance(data, dict) and "actionId" not in data and ("run" in data or "metadata" in data):
        return "seed-era"
    return "current"


def _entry(doc: Document, file: Path, errors: list[SpecError]) -> _Entry:
    layout = detect_layout(doc.data)
    model: type[Resource] | type[FlatResource] = Resource if layout == "seed-era" else FlatResource
    entry = _Entry(doc, file, layout)
    before = len(errors)
    validated = _validate(model, doc, str(file), errors)
    if validated is None or len(errors) > before:
        return entry
    plan_of = from_seed if isinstance(validated, Resource) else from_flat
    try:
        entry.plan = plan_of(validated, file.resolve(), doc.line)
    except ExprError as exc:
        where = exc.source or ""
        errors.append(SpecError(f"bad expression: {exc.message}" + (f" in `{where}`" if where else ""),
                                str(file), *_expression_mark(doc, where)))
    return entry


def _expression_mark(doc: Document, source: str) -> tuple[int, int]:
    """Where the expression `source` is written in `doc` (the document start when not found)."""
    for path, mark in doc.values.items():
        value: Any = doc.data
        try:
            for part in path:
                value = value[part]
        except (KeyError, IndexError, TypeError):
            continue
        if isinstance(value, str) and source and source in value:
            return mark
    return (doc.line, doc.col)


@dataclass
class _Entry:
    """A resource document, validated or not."""

    doc: Document
    file: Path
    layout: Layout
    plan: ResourcePlan | None = None

    @property
    def base(self) -> tuple[str, ...]:
        """Where identity keys live: under `metadata` (seed-era) or at the top (current)."""
        return ("metadata",) if self.layout == "seed-era" else ()

    @property
    def actions(self) -> tuple[str, ...]:
        """Where action blocks live: under `run` (seed-era) or at the top (current)."""
        return ("run",) if self.layout == "seed-era" else ()

    @property
    def action_id(self) -> str | None:
        aid = self.get(*self.base, "actionId")
        return aid if isinstance(aid, str) else None

    def get(self, *path: str) -> Any:
        cur: Any = self.doc.data
        for part in path:
            cur = cur.get(part) if isinstance(cur, dict) else None
        return cur

    def requires(self) -> list[str]:
        req = self.get(*self.base, "requires")
        req = [req] if isinstance(req, str) else req
        return [r for r in req if isinstance(r, str)] if isinstance(req, list) else []


# ---------------------------------------------------------------- cross-resource checks


def _check_references(by_id: dict[str, _Entry], errors: list[SpecError], check_names: bool) -> None:
    for entry in by_id.values():
        doc, file = entry.doc, str(entry.file)
        raw_req = entry.get(*entry.base, "requires")
        for i, dep in enumerate(entry.requires()):
            if check_names and dep not in by_id:
                path = (*entry.base, "requires", *((i,) if isinstance(raw_req, list) else ()))
                line, col = doc.value_mark(path)
                msg = f"requires '{dep}', but no resource has that actionId" + _known(by_id)
                errors.append(SpecError(msg, file, line, col, _closest(dep, by_id)))
        block = entry.get(*entry.actions)
        if isinstance(block, dict):
            # One primary action per resource; apiResponse may join it (it shapes the answer).
            present = [k for k in _PRIMARY_KEYS if block.get(k) is not None]
            if len(present) > 1:
                line, col = doc.key_mark((*entry.actions, present[1]))
                msg = (f"a resource has one primary action, but this one has {len(present)}: "
                       + " and ".join(present) + " (put the others in before:/after: steps)")
                errors.append(SpecError(msg, file, line, col))
        tools = entry.get(*entry.actions, "chat", "tools")
        for i, tool in enumerate(tools if isinstance(tools, list) else []):
            if not isinstance(tool, dict):
                continue
            script = tool.get("script")
            field = "script" if script is not None else "name"
            script = script if script is not None else tool.get("name")  # a tool runs its namesake
            if check_names and isinstance(script, str) and script not in by_id:
                line, col = doc.value_mark((*entry.actions, "chat", "tools", i, field))
                msg = f"tool '{tool.get('name')}' runs '{script}', but no resource has that actionId"
                errors.append(SpecError(msg + _known(by_id), file, line, col, _closest(script, by_id)))
    for cycle in cycles({aid: e.requires() for aid, e in by_id.items()}):
        first = by_id[cycle[0]]
        line, col = first.doc.key_mark((*first.base, "requires"))
        errors.append(SpecError("dependency cycle: " + " -> ".join(cycle), str(first.file), line, col))


def _known(names: dict[str, Any]) -> str:
    if not names:
        return " (no resources are defined)"
    listed = ", ".join(list(names)[:12])
    return f" (known: {listed}{', …' if len(names) > 12 else ''})"


def _closest(word: str, options: Any) -> str | None:
    options = list(options)
    lowered = {str(o).lower(): str(o) for o in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return match[0] if match else None


def _holds_actions(path: tuple[str | int, ...]) -> bool:
    """True for a mapping where action blocks are written: a resource, its `run:`, a step."""
    return path in ((), ("run",)) or (len(path) >= 2 and path[-2] in ("before", "after")
                                      and isinstance(path[-1], int))


# Keys KDeps accepts that this implementation reads but does not act on: a warning, not an error.
_IGNORED_KEYS: dict[tuple[str, ...], str] = {
    ("settings", "agentSettings", "lockFile"): "only used when building images",
    ("settings", "apiServer", "rateLimit"): "requests are not rate-limited by this implementation",
    ("settings", "sqlConnections"): "sql resources are not supported by this implementation",
}
_IGNORED_RESOURCE_KEYS: dict[tuple[str, ...], str] = {
    ("python", "venvName"): "python steps run in the agent's own interpreter",
}


def _warnings(workflow_doc: Document | None, workflow_file: str, entries: list[_Entry]) -> list[SpecError]:
    """Keys that validate but have no effect here, each with its location."""
    found: list[SpecError] = []
    if workflow_doc is not None:
        for path, why in _IGNORED_KEYS.items():
            if path in workflow_doc.keys:
                line, col = workflow_doc.keys[path]
                found.append(SpecError(f"{'.'.join(path)} has no effect: {why}", workflow_file, line, col))
    for entry in entries:
        data = entry.doc.data
        if entry.layout == "current" and isinstance(data, dict) and not data.get("name"):
            # KDeps' resource schema requires it; here the actionId stands in for it
            line, col = entry.doc.key_mark(("actionId",))
            msg = (f"name is required by KDeps for a resource; '{data.get('actionId')}' has none "
                   "(add `name:` so the agent also runs there)")
            found.append(SpecError(msg, str(entry.file), line, col))
        for path, why in _IGNORED_RESOURCE_KEYS.items():
            full = (*entry.actions, *path)
            if full in entry.doc.keys:
                line, col = entry.doc.keys[full]
                found.append(SpecError(f"{'.'.join(path)} has no effect: {why}", str(entry.file), line, col))
    return found


# ---------------------------------------------------------------- pydantic errors -> SpecError

_TYPE_NAMES = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}
_EXPECTED = {
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
    "list_type": "a list",
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}

_PATTERN_HINTS = {
    "path": "must start with '/'",
    "actionId": "must start with a letter or _ and use only letters, digits, _ . -",
    "name": "must be 1-64 letters, digits, _ or -",
}


def _validate(model: type[BaseModel], doc: Document, file: str, errors: list[SpecError]) -> Any:
    if not isinstance(doc.data, dict):
        errors.append(
            SpecError(
                f"a {model.__name__} document must be a mapping, got "
                f"{_TYPE_NAMES.get(type(doc.data), type(doc.data).__name__)}",
                file,
                doc.line,
                doc.col,
            )
        )
        return None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_context=True):
            errors.append(_convert(model, err, doc, file))
        return None


def _data_path(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The YAML path of a pydantic error location (dropping union tags and the like)."""
    path: list[str | int] = []
    cur = data
    for part in loc:
        in_dict = isinstance(cur, dict) and part in cur
        if in_dict or (isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)):
            cur = cur[part]
            path.append(part)
        elif isinstance(cur, dict) and isinstance(part, str):
            if part is not loc[-1] and part in ("action", "expression"):
                continue  # a union tag, not a key
            path.append(part)  # a missing or unknown key: the last element
            break
    return tuple(path)


def _model_at(model: type[BaseModel], path: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that validates the mapping at `path`, if any."""
    tp: Any = model
    for part in path:
        tp = _unwrap(tp, part)
        if tp is None:
            return None
    return _as_model(tp)


def _as_model(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in typing.get_args(tp):
        found = _as_model(arg)
        if found is not None:
            return found
    return None


def _unwrap(tp: Any, part: str | int) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0], part)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            found = _unwrap(arg, part)
            if found is not None:
                return found
        return None
    if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
        name = {f.alias or n: n for n, f in tp.model_fields.items()}.get(part, part)
        field_info = tp.model_fields.get(name)
        return field_info.annotation if field_info else None
    if origin is list and isinstance(part, int):
        return typing.get_args(tp)[0]
    if origin is dict and isinstance(part, str):
        return typing.get_args(tp)[1]
    return None


def _dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _convert(model: type[BaseModel], err: ErrorDetails, doc: Document, file: str) -> SpecError:
    kind = err["type"]
    path = _data_path(doc.data, tuple(err["loc"]))
    where = _dotted(path)
    ctx = err.get("ctx") or {}
    suggestion = ctx.get("suggestion")

    if kind == "extra_forbidden":
        key = str(path[-1])
        parent = path[:-1]
        owner = _model_at(model, parent)
        allowed = owner.yaml_keys() if owner is not None and hasattr(owner, "yaml_keys") else []
        if (key in UNSUPPORTED_ACTIONS and _holds_actions(parent)) or key == "mcp" or (
                key in UNSUPPORTED_SETTINGS and parent == ("settings",)):
            msg = f"`{key}` is not supported by this implementation"
            if key == "sql":
                msg += " (query the database from a python or exec resource)"
            suggestion = None
        else:
            msg = f"unknown key '{key}'" + (f" in {_dotted(parent)}" if parent else "")
            suggestion = _closest(key, allowed)
            if not suggestion:
                msg += key_home(model, parent, key)
        line, col = doc.key_mark(path)
        return SpecError(msg, file, line, col, suggestion)

    if kind == "missing":
        key = str(path[-1])
        parent = path[:-1]
        line, col = doc.key_mark(parent) if parent else (doc.line, doc.col)
        return SpecError(
            f"missing required key '{key}'" + (f" in {_dotted(parent)}" if parent else ""), file, line, col
        )

    line, col = doc.value_mark(path)
    got = err.get("input")
    got_name = _TYPE_NAMES.get(type(got), type(got).__name__)
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",")]
        shown = f"'{got}'" if isinstance(got, str) and len(got) <= 40 else got_name
        if isinstance(got, int | float) and not isinstance(got, bool):
            shown = str(got)
        return SpecError(
            f"{where}: invalid value {shown}; expected one of: {', '.join(options)}",
            file,
            line,
            col,
            _closest(str(got), options) if isinstance(got, str) else None,
        )
    if kind == "string_pattern_mismatch" and path and path[-1] in _PATTERN_HINTS:
        return SpecError(f"{where}: {_PATTERN_HINTS[path[-1]]}, got '{got}'", file, line, col)
    if kind in _EXPECTED:
        return SpecError(f"{where}: expected {_EXPECTED[kind]}, got {got_name}", file, line, col)
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if msg[:1].isupper() and not msg[1:2].isupper():
        msg = msg[0].lower() + msg[1:]
    return SpecError(f"{where}: {msg}" if where else msg, file, line, col, suggestion)
