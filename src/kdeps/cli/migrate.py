"""`kdeps migrate PATH`: rewrite a seed-era agent (`metadata:` + `run:` resources) into the current
flat layout, keeping comments, key order and quoting where the YAML allows.

Mapping (KDeps' domain models before and after upstream PR #320; `expr` ran after the action):
    metadata.{actionId,name,description,category,requires}  -> top level
    run.restrictToHttpMethods / restrictToRoutes             -> validations.methods / routes
    run.allowedHeaders / allowedParams                       -> validations.headers / params
    run.skipCondition                                        -> validations.skip
    run.preflightCheck.validations / .error                  -> validations.check / error
    run.validation.{required,rules,properties,fields}        -> validations.{same}
    run.validation.customRules[].expr                        -> validations.expr (message kept as comment)
    run.exprBefore                                           -> before
    run.expr, run.exprAfter                                  -> after (in that order)
    run.<action>.timeoutDuration                             -> <action>.timeout
    run.apiResponse.meta.{headers,statusCode,model,backend}  -> apiResponse.{same}
    run.{chat,httpClient,sql,python,exec,apiResponse,onError} -> top level
    settings.apiServerMode / webServerMode                   -> dropped (a present block is served)
    settings.apiServer.cors.enableCors                       -> dropped (a present cors block is on)
"""

from __future__ import annotations

import difflib
import io
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, MarkedYAMLError
from ruamel.yaml.tokens import CommentToken

WORKFLOW_FILES = ("workflow.yaml", "workflow.yml")
ACTIONS = ("chat", "httpClient", "sql", "python", "exec")
_VALIDATION_RULE_KEYS = ("required", "rules", "properties", "fields")
_META_TO_RESPONSE = ("headers", "statusCode", "model", "backend")
_RESOURCE_ORDER = ("actionId", "name", "description", "category", "requires", "items")


class MigrationError(Exception):
    """A document that cannot be migrated, located at file:line."""

    def __init__(self, message: str, file: str = "", line: int | None = None) -> None:
        self.message, self.file, self.line = message, file, line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}: {self.message}"
        return f"{self.file}: {self.message}" if self.file else self.message


@dataclass
class FileResult:
    """The outcome for one file: its new text and what changed."""

    path: Path
    original: str
    migrated: str
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.original != self.migrated


# ---------------------------------------------------------------- YAML round trip


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long prompts
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _line(node: Any, key: Any = None) -> int | None:
    """1-based line of `node` (or of its `key`) in the source file."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        return int(lc.key(key)[0]) + 1 if key is not None else int(lc.line) + 1
    except (KeyError, TypeError, AttributeError):
        return None


def _dedent_tokens(tokens: Any, by: int) -> None:
    """Shift the full-line comments among `tokens` left by `by` columns."""
    pattern = re.compile(r"\n {" + str(by) + r"}(?= *#)")
    if isinstance(tokens, CommentToken):
        tokens.value = pattern.sub("\n", tokens.value)
        if tokens.value.startswith("#") and tokens.column >= by:  # printed at its own column
            tokens.column = tokens.column - by
    elif isinstance(tokens, list):
        for token in tokens:
            _dedent_tokens(token, by)


def _dedent_comments(node: Any, by: int) -> None:
    """Shift the full-line comments inside a block moved `by` columns left along with its keys."""
    ca = getattr(node, "ca", None)
    if ca is not None:
        _dedent_tokens(ca.comment, by)
        for tokens in ca.items.values():
            _dedent_tokens(tokens, by)
        _dedent_tokens(getattr(ca, "end", None), by)
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        _dedent_comments(child, by)


def _move(src: CommentedMap, key: str, dst: CommentedMap, new_key: str | None = None, *,
          dedent: int = 0) -> None:
    """Move `src[key]` to `dst[new_key or key]` with the comments attached to it."""
    value = src.pop(key)
    target = new_key or key
    dst[target] = value
    if key in src.ca.items:
        dst.ca.items[target] = src.ca.items.pop(key)
    if dedent:
        _dedent_comments(value, dedent)
        _dedent_tokens(dst.ca.items.get(target), dedent)


def _rename(node: CommentedMap, old: str, new: str) -> None:
    """Rename a key in place, keeping its position and comments."""
    keys = list(node.keys())
    pos = keys.index(old)
    value = node.pop(old)
    comment = node.ca.items.pop(old, None)
    node.insert(pos, new, value)
    if comment is not None:
        node.ca.items[new] = comment


# ---------------------------------------------------------------- documents


def is_seed_resource(doc: Any) -> bool:
    """A seed-era resource: `run:` and/or `metadata:` instead of a top-level actionId."""
    return isinstance(doc, dict) and ("run" in doc or "metadata" in doc) and "actionId" not in doc \
        and str(doc.get("kind", "Resource")) == "Resource"


def migrate_resource(doc: CommentedMap, file: str, notes: list[str]) -> CommentedMap:
    """The flat-layout form of one seed-era resource document."""
    meta = doc.get("metadata")
    run = doc.get("run")
    if meta is not None and not isinstance(meta, CommentedMap):
        raise MigrationError("metadata must be a mapping", file, _line(doc, "metadata"))
    if run is not None and not isinstance(run, CommentedMap):
        raise MigrationError("run must be a mapping", file, _line(doc, "run"))
    meta = meta if meta is not None else CommentedMap()
    run = run if run is not None else CommentedMap()

    out = CommentedMap()
    if doc.ca.comment:
        out.ca.comment = doc.ca.comment
    for key in list(meta):
        _move(meta, key, out, dedent=2)
    for key in list(doc):
        if key in ("apiVersion", "kind", "metadata", "run"):
            continue
        if key in out:
            raise MigrationError(f"'{key}' is set both at the top level and under metadata", file,
                                 _line(doc, key))
        _move(doc, key, out)
    # the comment on the last top-level key before `run:` introduces the run block: keep it
    for key in ("apiVersion", "kind", "metadata"):
        if key in doc.ca.items and key not in out.ca.items:
            tokens = doc.ca.items[key]
            if isinstance(tokens, list) and len(tokens) > 2 and tokens[2] is not None and out:
                last = list(out)[-1]
                out.ca.items.setdefault(last, [None, None, None, None])
                if out.ca.items[last][2] is None:
                    out.ca.items[last][2] = tokens[2]

    order = list(run)
    action = next((k for k in order if k in ACTIONS), None)
    if action is not None and "expr" in run and order.index("expr") < order.index(action):
        notes.append(f"{file}:{_line(run, 'expr')}: run.expr is written before {action}, but KDeps ran "
                     "it after the action: it becomes `after`. If it prepares the action's input, make it "
                     "`before`")
    leading = _leading_comments(run)
    lines = {key: _line(run, key) for key in order}
    validations = _validations(run, file, notes)
    if validations:
        out["validations"] = validations
    if "exprBefore" in run:
        _move(run, "exprBefore", out, "before", dedent=2)
        if not isinstance(out["before"], list):
            out["before"] = CommentedSeq([out["before"]])
    for key in list(run):
        if key in ("expr", "exprAfter", "apiResponse", "onError") or key in _SEED_VALIDATION_KEYS:
            continue
        if key in out:
            raise MigrationError(f"'{key}' is set both at the top level and under run", file, lines[key])
        _move(run, key, out, dedent=2)
        if key in ACTIONS and isinstance(out[key], dict) and "timeoutDuration" in out[key]:
            _rename(out[key], "timeoutDuration", "timeout")
        if key == "httpClient":
            _cache_switch(out[key], file, notes)
        if key not in ACTIONS:
            notes.append(f"{file}:{lines[key]}: run.{key} moved to the top level as is")
    after = _after(run, file)
    if after is not None:
        out["after"] = after
    if "apiResponse" in run:
        _move(run, "apiResponse", out, dedent=2)
        _flatten_meta(out["apiResponse"], file, notes)
    if "onError" in run:
        _move(run, "onError", out, dedent=2)
    out = _ordered(out)
    _replace_leading_comments(out, leading)
    return out


# ---------------------------------------------------------------- comments that introduce a run key
# ruamel stores a full-line comment as the tail of whatever precedes it. Keys under `run:` move to new
# places, so the comment written above each key is detached first and attached again above its new home.

_DESTINATION = {"restrictToHttpMethods": "methods", "restrictToRoutes": "routes", "allowedHeaders": "headers",
                "allowedParams": "params", "skipCondition": "skip", "exprBefore": "before", "expr": "after",
                "exprAfter": "after"}


def _trail(container: Any, key: Any) -> list[tuple[Any, Any]]:
    """(container, key) from `container[key]` down to its last block-style element."""
    slots = [(container, key)]
    node = container[key]
    while isinstance(node, CommentedMap | CommentedSeq) and node and not node.fa.flow_style():
        last = list(node)[-1] if isinstance(node, dict) else len(node) - 1
        slots.append((node, last))
        node = node[last]
    return slots


def _slot(container: Any) -> int:
    return 2 if isinstance(container, dict) else 0


def _detach_following(container: Any, key: Any) -> str:
    """Remove and return the full-line comments after `container[key]` (its end-of-line comment stays)."""
    for node, last in reversed(_trail(container, key)):
        tokens = node.ca.items.get(last)
        token = tokens[_slot(node)] if tokens and len(tokens) > _slot(node) else None
        if isinstance(token, CommentToken) and "\n" in token.value:
            first, _, rest = token.value.partition("\n")
            if "#" in rest:
                token.value = first + "\n"
                return rest
    return ""


def _attach_following(container: Any, key: Any, text: str) -> None:
    node, last = _trail(container, key)[-1]
    tokens = node.ca.items.setdefault(last, [None, None, None, None])
    token = tokens[_slot(node)]
    if token is None:
        tokens[_slot(node)] = CommentToken("\n" + text, CommentMark(0), None)
    else:
        joined = (token.value if token.value.endswith("\n") else token.value + "\n") + text
        token.value = re.sub(r"\n{3,}", "\n\n", joined)


def _render(tokens: list[Any]) -> str:
    return "".join(t.value if t.value.startswith("\n") else " " * t.column + t.value for t in tokens)


def _leading_comments(run: CommentedMap) -> dict[str, str]:
    """The comment lines written above each key of `run`, detached from where ruamel keeps them:
    the tail of the previous key, the map's head comment, or the key's own "before" slot."""
    keys = list(run)
    found: dict[str, str] = {}
    head = run.ca.comment[1] if run.ca.comment and len(run.ca.comment) > 1 and run.ca.comment[1] else []
    if keys and head:
        found[keys[0]] = _render(head)
        run.ca.comment = None
    for index, key in enumerate(keys):
        text = _detach_following(run, keys[index - 1]) if index else ""
        tokens = run.ca.items.get(key)
        if tokens and len(tokens) > 1 and tokens[1]:
            text += _render(tokens[1])
            tokens[1] = None
        if text:
            found[key] = found.get(key, "") + text
    return found


def _replace_leading_comments(out: CommentedMap, leading: dict[str, str]) -> None:
    """Attach each detached comment above the key its run key became (dedented to the new depth)."""
    validations = out.get("validations")
    pending: dict[tuple[str, str], str] = {}
    for run_key, text in leading.items():
        target = _DESTINATION.get(run_key, run_key)
        if run_key == "preflightCheck":
            target = "check" if isinstance(validations, dict) and "check" in validations else "error"
        elif run_key == "validation" and isinstance(validations, dict):
            target = next((k for k in (*_VALIDATION_RULE_KEYS, "expr") if k in validations), "required")
        where = "validations" if isinstance(validations, dict) and target in validations and \
            target not in out else "top"
        pending[(where, target)] = pending.get((where, target), "") + text
    top = list(out)
    for (where, target), text in pending.items():
        if where == "validations" and isinstance(validations, dict):
            inner = list(validations)
            pos = inner.index(target)
            if pos > 0:
                _attach_following(validations, inner[pos - 1], text)
                continue
            target = "validations"
        if target in top and top.index(target) > 0:
            _attach_following(out, top[top.index(target) - 1], _dedent_text(text, 2))


def _dedent_text(text: str, by: int) -> str:
    return re.sub(r"(?m)^ {" + str(by) + r"}", "", text)


_SEED_VALIDATION_KEYS = ("restrictToHttpMethods", "restrictToRoutes", "allowedHeaders", "allowedParams",
                         "skipCondition", "preflightCheck", "validation")


def _validations(run: CommentedMap, file: str, notes: list[str]) -> CommentedMap:
    out = CommentedMap()
    for old, new in (("restrictToHttpMethods", "methods"), ("restrictToRoutes", "routes"),
                     ("allowedHeaders", "headers"), ("allowedParams", "params"), ("skipCondition", "skip")):
        if old in run:
            _move(run, old, out, new)
    pre = run.get("preflightCheck")
    if pre is not None:
        if not isinstance(pre, CommentedMap):
            raise MigrationError("preflightCheck must be a mapping", file, _line(run, "preflightCheck"))
        if "validations" in pre:
            _move(pre, "validations", out, "check", dedent=2)
        if "error" in pre:
            _move(pre, "error", out, dedent=2)
        for key in pre:
            if key not in ("validations", "error"):
                raise MigrationError(f"preflightCheck.{key} has no place in the current layout", file,
                                     _line(pre, key))
        if "preflightCheck" in run.ca.items and "check" in out and "check" not in out.ca.items:
            out.ca.items["check"] = run.ca.items["preflightCheck"]
    rules = run.get("validation")
    if rules is not None:
        if not isinstance(rules, CommentedMap):
            raise MigrationError("validation must be a mapping", file, _line(run, "validation"))
        for key in _VALIDATION_RULE_KEYS:
            if key in rules:
                _move(rules, key, out, dedent=2)
        custom = rules.get("customRules")
        if custom is not None:
            out["expr"] = _custom_rules(custom, file, notes)
        for key in rules:
            if key not in (*_VALIDATION_RULE_KEYS, "customRules"):
                raise MigrationError(f"validation.{key} has no place in the current layout", file,
                                     _line(rules, key))
    return out


def _custom_rules(custom: Any, file: str, notes: list[str]) -> CommentedSeq:
    if not isinstance(custom, list):
        raise MigrationError("validation.customRules must be a list", file)
    seq = CommentedSeq()
    for index, rule in enumerate(custom):
        if isinstance(rule, str):
            seq.append(rule)
            continue
        if not isinstance(rule, dict) or "expr" not in rule:
            raise MigrationError("each validation.customRules entry needs an expr", file,
                                 _line(rule) or _line(custom))
        seq.append(rule["expr"])
        message = rule.get("message")
        if message:
            seq.yaml_add_eol_comment(f"# {message}", len(seq) - 1)
            notes.append(f"{file}:{_line(rule) or '?'}: customRules[{index}].message kept only as a comment "
                         "(validations.expr has no per-rule message)")
    return seq


def _after(run: CommentedMap, file: str) -> CommentedSeq | None:
    parts = [key for key in ("expr", "exprAfter") if key in run]
    if not parts:
        return None
    if len(parts) == 1:
        value = run[parts[0]]
        if not isinstance(value, list):
            value = CommentedSeq([value])
        _dedent_comments(value, 2)
        return value  # type: ignore[no-any-return]
    seq = CommentedSeq()
    for key in parts:
        value = run[key]
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            seq.append(item)
            ca = getattr(items, "ca", None)
            if ca is not None and i in ca.items:
                seq.ca.items[len(seq) - 1] = ca.items[i]
    _dedent_comments(seq, 2)
    return seq


def _cache_switch(http: Any, file: str, notes: list[str]) -> None:
    """`cache.enabled` is gone: a present cache block is on."""
    cache = http.get("cache") if isinstance(http, CommentedMap) else None
    if not isinstance(cache, CommentedMap) or "enabled" not in cache:
        return
    if cache["enabled"] is False:
        notes.append(f"{file}:{_line(cache, 'enabled')}: httpClient.cache.enabled was false: the cache block "
                     "is removed (a present cache block turns caching on)")
        _drop(http, "cache")
    else:
        _drop(cache, "enabled")


def _flatten_meta(response: Any, file: str, notes: list[str]) -> None:
    if not isinstance(response, CommentedMap) or "meta" not in response:
        return
    meta = response["meta"]
    if not isinstance(meta, CommentedMap):
        raise MigrationError("apiResponse.meta must be a mapping", file, _line(response, "meta"))
    pos = list(response).index("meta")
    moved = CommentedMap()
    for key in list(meta):
        if key in _META_TO_RESPONSE:
            if key in response:
                raise MigrationError(f"apiResponse.{key} is set both directly and under meta", file,
                                     _line(meta, key))
            _move(meta, key, moved, dedent=2)
    comment = response.ca.items.pop("meta", None)
    if not meta:
        del response["meta"]
    else:
        notes.append(f"{file}:{_line(response, 'meta')}: apiResponse.meta keeps {', '.join(meta)} "
                     "(the current layout has no such keys)")
        pos += 1
    for offset, key in enumerate(moved):
        response.insert(pos + offset, key, moved[key])
        if key in moved.ca.items:
            response.ca.items[key] = moved.ca.items[key]
    if comment is not None and moved:
        last = list(moved)[-1]
        response.ca.items.setdefault(last, comment)


def _ordered(out: CommentedMap) -> CommentedMap:
    """Identity keys first, then validations, before, the action, after, apiResponse, onError."""
    order = [*_RESOURCE_ORDER, "validations", "before"]
    tail = ["after", "apiResponse", "onError"]
    keys = list(out)
    ranked = [k for k in order if k in out] + [k for k in keys if k not in order and k not in tail] + \
        [k for k in tail if k in out]
    if ranked == keys:
        return out
    result = CommentedMap()
    if out.ca.comment:
        result.ca.comment = out.ca.comment
    for key in ranked:
        _move(out, key, result)
    return result


def migrate_workflow(doc: CommentedMap, file: str, notes: list[str]) -> None:
    """Drop the seed-era switches from workflow settings; migrate inline resources in place."""
    settings = doc.get("settings")
    if isinstance(settings, CommentedMap):
        for mode, block in (("apiServerMode", "apiServer"), ("webServerMode", "webServer")):
            if mode not in settings:
                continue
            line = _line(settings, mode)
            if settings[mode] is False and block in settings:
                notes.append(f"{file}:{line}: {mode} was false, but a present {block} block is served in the "
                             f"current layout; remove settings.{block} to keep it off")
            _drop(settings, mode)
        cors = (settings.get("apiServer") or {}).get("cors") if isinstance(settings.get("apiServer"), dict) \
            else None
        if isinstance(cors, CommentedMap) and "enableCors" in cors:
            if cors["enableCors"] is False:
                notes.append(f"{file}:{_line(cors, 'enableCors')}: enableCors was false: the cors block is "
                             "removed (a present cors block turns CORS on)")
                _drop(settings["apiServer"], "cors")
            else:
                _drop(cors, "enableCors")
    inline = doc.get("resources")
    if isinstance(inline, list):
        for index, item in enumerate(inline):
            if is_seed_resource(item):
                inline[index] = migrate_resource(item, file, notes)


def _drop(node: CommentedMap, key: str) -> None:
    """Delete a key and its end-of-line comment; full-line comments after it move to the key before."""
    keys = list(node)
    pos = keys.index(key)
    tokens = node.ca.items.pop(key, None)
    del node[key]
    token = tokens[2] if isinstance(tokens, list) and len(tokens) > 2 else None
    if token is None or pos == 0:
        return
    text = token.value
    rest = text[text.index("\n") + 1:] if "\n" in text and not text.startswith("\n") else text
    if not rest.strip(" \n") and "\n\n" not in text:
        return
    prev = node.ca.items.setdefault(keys[pos - 1], [None, None, None, None])
    if prev[2] is None:
        prev[2] = CommentToken("\n" + rest.lstrip("\n") if not rest.startswith("\n") else rest,
                               token.start_mark, None)


# ---------------------------------------------------------------- files


def migrate_file(path: Path, *, workflow: bool) -> FileResult:
    """Migrate one YAML file (all its documents)."""
    shown = str(path)
    original = path.read_text(encoding="utf-8")
    yaml = _yaml()
    try:
        docs = list(yaml.load_all(original))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise MigrationError(f"YAML syntax error: {exc.problem or exc.context}", shown, line) from None
    notes: list[str] = []
    changed = False
    for index, doc in enumerate(docs):
        if not isinstance(doc, CommentedMap):
            continue
        if workflow and _is_workflow(doc):
            before = _dump(yaml, [doc])
            migrate_workflow(doc, shown, notes)
            changed = changed or _dump(yaml, [doc]) != before
        elif is_seed_resource(doc):
            docs[index] = migrate_resource(doc, shown, notes)
            changed = True
    if not changed:
        return FileResult(path, original, original, notes)
    return FileResult(path, original, _dump(yaml, docs, explicit_start=original.lstrip().startswith("---")),
                      notes)


def _is_workflow(doc: CommentedMap) -> bool:
    kind = doc.get("kind")
    if kind is not None:
        return str(kind) == "Workflow"
    meta = doc.get("metadata")
    return "settings" in doc or (isinstance(meta, dict) and "targetActionId" in meta)


def _dump(yaml: YAML, docs: list[Any], explicit_start: bool = False) -> str:
    stream = io.StringIO()
    yaml.explicit_start = explicit_start
    yaml.dump_all(docs, stream)
    return stream.getvalue()


def agent_files(path: Path) -> tuple[Path, list[Path]]:
    """The workflow file and resource files of the agent at `path` (a folder or workflow.yaml)."""
    if path.is_dir():
        workflow = next((path / n for n in WORKFLOW_FILES if (path / n).is_file()), None)
        if workflow is None:
            raise MigrationError(f"no workflow.yaml in folder {path}")
    else:
        workflow = path
    res_dir = workflow.parent / "resources"
    resources = sorted(p for p in res_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()) \
        if res_dir.is_dir() else []
    return workflow, resources


def migrate_agent(path: Path) -> list[FileResult]:
    """Migrate every file of the agent at `path` in memory; nothing is written."""
    workflow, resources = agent_files(path)
    results = [migrate_file(workflow, workflow=True)]
    results += [migrate_file(p, workflow=False) for p in resources]
    return results


# ---------------------------------------------------------------- command


@click.command(name="migrate")
@click.argument("path", default=".", type=click.Path(exists=True, path_type=Path))
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the migrated agent to DIR; the original is left untouched.")
@click.option("--dry-run", is_flag=True, help="Print a unified diff of the changes; write nothing.")
def command(path: Path, output: Path | None, dry_run: bool) -> None:
    """Rewrite the seed-era agent at PATH (metadata:/run: resources) into the current flat layout.
    In place by default, keeping each changed file's original as FILE.bak."""
    try:
        results = migrate_agent(path)
    except MigrationError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    except OSError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    root = results[0].path.parent
    for result in results:
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
    changed = [r for r in results if r.changed]
    if dry_run:
        for r in changed:
            rel = r.path.relative_to(root).as_posix()
            sys.stdout.writelines(difflib.unified_diff(
                r.original.splitlines(keepends=True), r.migrated.splitlines(keepends=True),
                f"a/{rel}", f"b/{rel}"))
        click.echo(f"{len(changed)} of {len(results)} file(s) would change.", err=True)
        return
    if output is not None:
        if output.exists() and any(output.iterdir()):
            click.echo(f"error: --output {output} exists and is not empty", err=True)
            sys.exit(1)
        shutil.copytree(root, output, dirs_exist_ok=True)
        for r in changed:
            (output / r.path.relative_to(root)).write_text(r.migrated, encoding="utf-8")
        click.echo(f"Migrated {len(changed)} of {len(results)} file(s) into {output}.")
        return
    if not changed:
        click.echo("Already in the current layout; nothing to do.")
        return
    for r in changed:
        shutil.copy2(r.path, r.path.with_name(r.path.name + ".bak"))
        r.path.write_text(r.migrated, encoding="utf-8")
        click.echo(f"migrated {r.path.relative_to(root).as_posix()} (original kept as {r.path.name}.bak)")
