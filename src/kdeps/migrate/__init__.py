"""Rewrite a seed-era agent (`metadata:` + `run:` resources) into the current flat layout, keeping
comments, key order and quoting where the YAML allows (`kdeps migrate`). Nothing here writes a file.

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

from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError

from kdeps.migrate.documents import MigrationError, is_seed_resource, migrate_resource, migrate_workflow
from kdeps.migrate.yamledit import dump, round_trip

__all__ = ["FileResult", "MigrationError", "agent_files", "migrate_agent", "migrate_file"]

WORKFLOW_FILES = ("workflow.yaml", "workflow.yml")


@dataclass
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


def migrate_file(path: Path, *, workflow: bool) -> FileResult:
    """Migrate one YAML file (all its documents)."""
    shown = str(path)
    original = path.read_text(encoding="utf-8")
    yaml = round_trip()
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
            before = dump(yaml, [doc])
            migrate_workflow(doc, shown, notes)
            changed = changed or dump(yaml, [doc]) != before
        elif is_seed_resource(doc):
            docs[index] = migrate_resource(doc, shown, notes)
            changed = True
    if not changed:
        return FileResult(path, original, original, notes)
    return FileResult(path, original, dump(yaml, docs, explicit_start=original.lstrip().startswith("---")),
                      notes)


def _is_workflow(doc: CommentedMap) -> bool:
    kind = doc.get("kind")
    if kind is not None:
        return str(kind) == "Workflow"
    meta = doc.get("metadata")
    return "settings" in doc or (isinstance(meta, dict) and "targetActionId" in meta)


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
