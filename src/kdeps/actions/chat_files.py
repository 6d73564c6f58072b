"""Images for a chat resource's `files:` list: resolve each entry to an uploaded file or a path
under the workflow folder, check its real type from the bytes, and load it as an ImagePart."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import filetype

from kdeps.engine.request import find_upload
from kdeps.errors import ResourceError
from kdeps.llm.types import ImagePart

IMAGE_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
MAX_IMAGE_BYTES = 20 * 1024 * 1024


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
        path = _uploaded(entry, uploads)
        if path is None:
            path = Path(entry).expanduser()
            if not path.is_absolute():
                path = workflow_dir / path
        if not path.is_file():
            raise ResourceError(resource, f"file '{entry}' not found (looked for {path} and among the "
                                "uploaded files)", 400)
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
