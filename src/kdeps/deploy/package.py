"""`.kdeps` archives: a gzipped tar of an agent's workflow, resources and files, never its secrets."""

from __future__ import annotations

import io
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from kdeps.deploy.secrets import is_junk, is_secret_file, literal_secrets
from kdeps.errors import KdepsError

if TYPE_CHECKING:
    from kdeps.spec.loader import Project

ARCHIVE_SUFFIX = ".kdeps"
# Folders and files copied when present, as the KDeps docs list them.
STANDARD_DIRS = ("resources", "data", "public", "scripts")
STANDARD_FILES = ("requirements.txt",)


class PackageError(KdepsError):
    """An archive that cannot be written or read safely."""


@dataclass
class FileSet:
    """Files selected from an agent folder (paths relative to its root) and the secrets left out."""

    root: Path
    files: list[str] = field(default_factory=list)
    skipped_secrets: list[str] = field(default_factory=list)
    skipped_links: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # literal credentials found in the YAML files


def _extra_paths(project: Project) -> list[str]:
    """Paths the workflow points at besides the standard ones: requirements/pyproject files, static folders,
    local .gguf model files."""
    settings = project.workflow.settings
    agent = settings.agent_settings
    out = [rel for rel in (agent.requirements_file, agent.pyproject_file, agent.lock_file) if rel]
    if settings.web_server is not None:
        out += [route.public_path for route in settings.web_server.routes if route.public_path]
    for resource in project.resources.values():
        for chat in resource.chats():
            model = chat.model or ""
            if model.endswith(".gguf"):
                out.append(model)
    return out


def _inside(root: Path, rel: str) -> Path | None:
    if not rel or Path(rel).is_absolute():
        return None
    target = (root / rel).resolve()
    return target if target.is_relative_to(root) and target.exists() else None


def collect_files(project: Project) -> FileSet:
    """Select the files that make up an agent, skipping caches silently and secrets with a note."""
    root = Path(project.root).resolve()
    selected = FileSet(root)
    seen: set[str] = set()

    def add(path: Path) -> None:
        rel = path.relative_to(root).as_posix()
        if rel in seen:
            return
        if any(is_junk(part) for part in PurePosixPath(rel).parts):
            return
        if any(is_secret_file(part) for part in PurePosixPath(rel).parts):
            selected.skipped_secrets.append(rel)
            seen.add(rel)
            return
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            selected.skipped_links.append(rel)   # a link out of the agent folder could leak anything
            seen.add(rel)
            return
        seen.add(rel)
        if path.is_file():
            selected.files.append(rel)
        elif path.is_dir():
            for child in sorted(path.iterdir()):
                add(child)

    add(Path(project.workflow_file).resolve())
    # Secrets lying at the top of the agent folder are never packed; say so, since users expect them.
    for child in sorted(root.iterdir()):
        if child.is_file() and is_secret_file(child.name):
            selected.skipped_secrets.append(child.name)
    candidates = [*STANDARD_DIRS, *STANDARD_FILES, *_extra_paths(project)]
    for rel in candidates:
        target = _inside(root, rel)
        if target is not None and target != root:
            add(root / target.relative_to(root))
    selected.files.sort()
    return selected


def _clean_info(name: str, size: int, mode: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = size, int(mtime)
    info.mode = 0o755 if mode & 0o111 else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_archive(fileset: FileSet, dest: Path) -> Path:
    """Write the selected files to a gzipped tar at `dest` (entries relative to the agent root)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with tarfile.open(tmp, "w:gz") as tar:
        for rel in fileset.files:
            path = fileset.root / rel
            data = path.read_bytes()
            st = path.stat()
            tar.addfile(_clean_info(rel, len(data), st.st_mode, st.st_mtime), io.BytesIO(data))
    os.replace(tmp, dest)
    return dest


def archive_name(name: str, version: str) -> str:
    """`<name>-<version>.kdeps`, with anything unsafe for a file name replaced."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{name}-{version}").strip("-.") or "agent"
    return safe + ARCHIVE_SUFFIX


def package_project(project: Project, output_dir: Path, name: str | None = None) -> tuple[Path, FileSet]:
    """Pack a loaded (hence valid) project into `<output_dir>/<name>-<version>.kdeps`."""
    meta = project.workflow.metadata
    fileset = collect_files(project)
    fileset.warnings = literal_secrets(fileset.root, fileset.files)
    dest = Path(output_dir) / archive_name(name or str(meta.name), str(meta.version))
    return write_archive(fileset, dest), fileset


def extract_archive(archive: Path, dest: Path) -> Path:
    """Unpack a `.kdeps` archive into `dest`, refusing links, devices and paths that leave `dest`."""
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                target = (dest / member.name).resolve()
                if not (member.isfile() or member.isdir()) or not target.is_relative_to(dest) \
                        or PurePosixPath(member.name).is_absolute():
                    raise PackageError(f"{archive}: unsafe entry {member.name!r}; not extracting")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - Python builds without PEP 706
                tar.extractall(dest, members=members)  # members checked above
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PackageError(f"{archive}: not a readable .kdeps archive ({exc})") from exc
    return dest
