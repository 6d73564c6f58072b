"""Images for a chat resource's `files:` list: resolve each entry to an uploaded file or a path
under the workflow folder, check its real type from the bytes, and load it as an ImagePart.

An entry may come from request data, so a path is confined: it must name one of this request's
uploads, or resolve (symlinks followed) inside the agent folder or a folder listed in the
`KDEPS_FILES_ALLOW` environment variable (os.pathsep-separated). Anything else gets the same error
whether or not it exists, so clients cannot probe the server's files."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import filetype

from kdeps.engine.request import find_upload
from kdeps.errors import ResourceError
from kdeps.llm.types import ImagePart

IMAGE_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024
ALLOW_ENV = "KDEPS_FILES_ALLOW"


def _flatten(values: Any) -> Iterable[Any]:
    if isinstance(values, list | tuple):
        for value in values:
            yield from _flatten(value)
    else:
        yield values


def _uploaded(entry: str, uploads: list[Any]) -> Path | None:
    """The saved path of the upload `entry` names (KDeps' lookup: `file[]` works as `file` does)."""
    upload = find_upload(uploads, entry)
    return Path(upload.path) if upload is not None else None


def _roots(workflow_dir: Path) -> list[Path]:
    extra = [Path(p) for p in os.environ.get(ALLOW_ENV, "").split(os.pathsep) if p.strip()]
    return [root.resolve() for root in (workflow_dir, *extra)]


def _confined(entry: str, workflow_dir: Path) -> Path | None:
    """The real path `entry` names when it lies inside the agent folder or an allowed folder."""
    path = Path(entry)
    if not path.is_absolute():
        path = workflow_dir / path
    try:
        real = path.resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if any(real == root or root in real.parents for root in _roots(workflow_dir)):
        return real
    return None


def load_images(resource: str, entries: list[Any], workflow_dir: Path, uploads: list[Any]) -> list[ImagePart]:
    """Every rendered `files` entry as an ImagePart. Empty entries (an upload that was not sent)
    are skipped; a missing, unsupported or oversized file is a 400 error naming it."""
    images: list[ImagePart] = []
    for raw in _flatten(entries):
        if raw is None:
            continue
        entry = str(raw).strip()
        if not entry:
            continue
        path = _uploaded(entry, uploads) or _confined(entry, workflow_dir)
        if path is None or not path.is_file():
            shown = entry if len(entry) <= 120 else entry[:117] + "..."
            raise ResourceError(resource, f"file '{shown}' not found among the uploaded files or in the "
                                "agent folder", 400)
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ResourceError(
                resource,
                f"file '{entry}' is {size / 1048576:.1f} MB; images are limited to "
                f"{MAX_IMAGE_BYTES // 1048576} MB",
                400,
            )
        data = path.read_bytes()
        kind = filetype.guess(data[:8192])
        mime = kind.mime if kind else "unknown"
        if mime not in IMAGE_MIMES:
            raise ResourceError(
                resource,
                f"file '{entry}' is not a supported image (detected {mime}); use PNG, JPEG, GIF or WebP",
                400,
            )
        images.append(ImagePart(data=data, mime=mime, name=path.name))
    return images
