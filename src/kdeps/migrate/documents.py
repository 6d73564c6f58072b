"""One seed-era document in the current layout: a resource (`metadata:`/`run:` to flat keys) or the
settings of a workflow. See `kdeps.migrate` for the mapping."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from kdeps.errors import KdepsError
from kdeps.migrate.yamledit import (
    attach_following,
    comment_text,
    dedent_comments,
    dedent_text,
    detach_following,
    drop,
    line_of,
    move,
    rename,
)

ACTIONS = ("chat", "httpClient", "sql", "python", "exec")
_VALIDATION_RULE_KEYS = ("required", "rules", "properties", "fields")
_META_TO_RESPONSE = ("headers", "statusCode", "model", "backend")
_RESOURCE_ORDER = ("actionId", "name", "description", "category", "requires", "items")


class MigrationError(KdepsError):
    """A document that cannot be migrated, located at file:line."""

    def __init__(self, message: str, file: str = "", line: int | None = None) -> None:
        self.file, self.line = file, line
        super().__init__(message)

    def __str__(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}: {self.message}"
        return f"{self.file}: {self.message}" if self.file else self.message


def is_seed_resource(doc: Any) -> bool:
    """A seed-era resource: `run:` and/or `metadata:` instead of a top-level actionId."""
    return isinstance(doc, dict) and ("run" in doc or "metadata" in doc) and "actionId" not in doc \
        and str(doc.get("kind", "Resource")) == "Resource"


def migrate_resource(doc: CommentedMap, file: str, notes: list[str]) -> CommentedMap:
    """The flat-layout form of one seed-era resource document."""
    meta = doc.get("metadata")
    run = doc.get("run")
    if meta is not None and not isinstance(meta, CommentedMap):
        raise MigrationError("metadata must be a mapping", file, line_of(doc, "metadata"))
    if run is not None and not isinstance(run, CommentedMap):
        raise MigrationError("run must be a mapping", file, line_of(doc, "run"))
    meta = meta if meta is not None else CommentedMap()
    run = run if run is not None else CommentedMap()

    out = CommentedMap()
    if doc.ca.comment:
        out.ca.comment = doc.ca.comment
    for key in list(meta):
        move(meta, key, out, dedent=2)
    for key in list(doc):
        if key in ("apiVersion", "kind", "metadata", "run"):
            continue
        if key in out:
            raise MigrationError(f"'{key}' is set both at the top level and under metadata", file,
                                 line_of(doc, key))
        move(doc, key, out)
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
        notes.append(f"{file}:{line_of(run, 'expr')}: run.expr is written before {action}, but KDeps ran "
                     "it after the action: it becomes `after`. If it prepares the action's input, make it "
                     "`before`")
    leading = _leading_comments(run)
    lines = {key: line_of(run, key) for key in order}
    validations = _validations(run, file, notes)
    if validations:
        out["validations"] = validations
    if "exprBefore" in run:
        move(run, "exprBefore", out, "before", dedent=2)
        if not isinstance(out["before"], list):
            out["before"] = CommentedSeq([out["before"]])
    for key in list(run):
        if key in ("expr", "exprAfter", "apiResponse", "onError") or key in _SEED_VALIDATION_KEYS:
            continue
        if key in out:
            raise MigrationError(f"'{key}' is set both at the top level and under run", file, lines[key])
        move(run, key, out, dedent=2)
        if key in ACTIONS and isinstance(out[key], dict) and "timeoutDuration" in out[key]:
            rename(out[key], "timeoutDuration", "timeout")
        if key == "httpClient":
            _cache_switch(out[key], file, notes)
        if key not in ACTIONS:
            notes.append(f"{file}:{lines[key]}: run.{key} moved to the top level as is")
    after = _after(run, file)
    if after is not None:
        out["after"] = after
    if "apiResponse" in run:
        move(run, "apiResponse", out, dedent=2)
        _flatten_meta(out["apiResponse"], file, notes)
    if "onError" in run:
        move(run, "onError", out, dedent=2)
    out = _ordered(out)
    _replace_leading_comments(out, leading)
    return out


# ruamel stores a full-line comment as the tail of whatever precedes it. Keys under `run:` move to new
# places, so the comment written above each key is detached first and attached again above its new home.

_DESTINATION = {"restrictToHttpMethods": "methods", "restrictToRoutes": "routes", "allowedHeaders": "headers",
                "allowedParams": "params", "skipCondition": "skip", "exprBefore": "before", "expr": "after",
                "exprAfter": "after"}


def _leading_comments(run: CommentedMap) -> dict[str, str]:
    """The comment lines written above each key of `run`, detached from where ruamel keeps them:
    the tail of the previous key, the map's head comment, or the key's own "before" slot."""
    keys = list(run)
    found: dict[str, str] = {}
    head = run.ca.comment[1] if run.ca.comment and len(run.ca.comment) > 1 and run.ca.comment[1] else []
    if keys and head:
        found[keys[0]] = comment_text(head)
        run.ca.comment = None
    for index, key in enumerate(keys):
        text = detach_following(run, keys[index - 1]) if index else ""
        tokens = run.ca.items.get(key)
        if tokens and len(tokens) > 1 and tokens[1]:
            text += comment_text(tokens[1])
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
                attach_following(validations, inner[pos - 1], text)
                continue
            target = "validations"
        if target in top and top.index(target) > 0:
            attach_following(out, top[top.index(target) - 1], dedent_text(text, 2))


_SEED_VALIDATION_KEYS = ("restrictToHttpMethods", "restrictToRoutes", "allowedHeaders", "allowedParams",
                         "skipCondition", "preflightCheck", "validation")


def _validations(run: CommentedMap, file: str, notes: list[str]) -> CommentedMap:
    out = CommentedMap()
    for old, new in (("restrictToHttpMethods", "methods"), ("restrictToRoutes", "routes"),
                     ("allowedHeaders", "headers"), ("allowedParams", "params"), ("skipCondition", "skip")):
        if old in run:
            move(run, old, out, new)
    pre = run.get("preflightCheck")
    if pre is not None:
        if not isinstance(pre, CommentedMap):
            raise MigrationError("preflightCheck must be a mapping", file, line_of(run, "preflightCheck"))
        if "validations" in pre:
            move(pre, "validations", out, "check", dedent=2)
        if "error" in pre:
            move(pre, "error", out, dedent=2)
        for key in pre:
            if key not in ("validations", "error"):
                raise MigrationError(f"preflightCheck.{key} has no place in the current layout", file,
                                     line_of(pre, key))
        if "preflightCheck" in run.ca.items and "check" in out and "check" not in out.ca.items:
            out.ca.items["check"] = run.ca.items["preflightCheck"]
    rules = run.get("validation")
    if rules is not None:
        if not isinstance(rules, CommentedMap):
            raise MigrationError("validation must be a mapping", file, line_of(run, "validation"))
        for key in _VALIDATION_RULE_KEYS:
            if key in rules:
                move(rules, key, out, dedent=2)
        custom = rules.get("customRules")
        if custom is not None:
            out["expr"] = _custom_rules(custom, file, notes)
        for key in rules:
            if key not in (*_VALIDATION_RULE_KEYS, "customRules"):
                raise MigrationError(f"validation.{key} has no place in the current layout", file,
                                     line_of(rules, key))
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
                                 line_of(rule) or line_of(custom))
        seq.append(rule["expr"])
        message = rule.get("message")
        if message:
            seq.yaml_add_eol_comment(f"# {message}", len(seq) - 1)
            notes.append(f"{file}:{line_of(rule) or '?'}: customRules[{index}].message kept only as a "
                         "comment (validations.expr has no per-rule message)")
    return seq


def _after(run: CommentedMap, file: str) -> CommentedSeq | None:
    parts = [key for key in ("expr", "exprAfter") if key in run]
    if not parts:
        return None
    if len(parts) == 1:
        value = run[parts[0]]
        if not isinstance(value, list):
            value = CommentedSeq([value])
        dedent_comments(value, 2)
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
    dedent_comments(seq, 2)
    return seq


def _cache_switch(http: Any, file: str, notes: list[str]) -> None:
    """`cache.enabled` is gone: a present cache block is on."""
    cache = http.get("cache") if isinstance(http, CommentedMap) else None
    if not isinstance(cache, CommentedMap) or "enabled" not in cache:
        return
    if cache["enabled"] is False:
        notes.append(f"{file}:{line_of(cache, 'enabled')}: httpClient.cache.enabled was false: the cache "
                     "block is removed (a present cache block turns caching on)")
        drop(http, "cache")
    else:
        drop(cache, "enabled")


def _flatten_meta(response: Any, file: str, notes: list[str]) -> None:
    if not isinstance(response, CommentedMap) or "meta" not in response:
        return
    meta = response["meta"]
    if not isinstance(meta, CommentedMap):
        raise MigrationError("apiResponse.meta must be a mapping", file, line_of(response, "meta"))
    pos = list(response).index("meta")
    moved = CommentedMap()
    for key in list(meta):
        if key in _META_TO_RESPONSE:
            if key in response:
                raise MigrationError(f"apiResponse.{key} is set both directly and under meta", file,
                                     line_of(meta, key))
            move(meta, key, moved, dedent=2)
    comment = response.ca.items.pop("meta", None)
    if not meta:
        del response["meta"]
    else:
        notes.append(f"{file}:{line_of(response, 'meta')}: apiResponse.meta keeps {', '.join(meta)} "
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
        move(out, key, result)
    return result


def migrate_workflow(doc: CommentedMap, file: str, notes: list[str]) -> None:
    """Drop the seed-era switches from workflow settings; migrate inline resources in place."""
    settings = doc.get("settings")
    if isinstance(settings, CommentedMap):
        for mode, block in (("apiServerMode", "apiServer"), ("webServerMode", "webServer")):
            if mode not in settings:
                continue
            line = line_of(settings, mode)
            if settings[mode] is False and block in settings:
                notes.append(f"{file}:{line}: {mode} was false, but a present {block} block is served in the "
                             f"current layout; remove settings.{block} to keep it off")
            drop(settings, mode)
        cors = (settings.get("apiServer") or {}).get("cors") if isinstance(settings.get("apiServer"), dict) \
            else None
        if isinstance(cors, CommentedMap) and "enableCors" in cors:
            if cors["enableCors"] is False:
                notes.append(f"{file}:{line_of(cors, 'enableCors')}: enableCors was false: the cors block is "
                             "removed (a present cors block turns CORS on)")
                drop(settings["apiServer"], "cors")
            else:
                drop(cors, "enableCors")
    inline = doc.get("resources")
    if isinstance(inline, list):
        for index, item in enumerate(inline):
            if is_seed_resource(item):
                inline[index] = migrate_resource(item, file, notes)
