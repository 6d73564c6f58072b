"""What the engine receives for one request and what it answers. The server builds a RequestData;
`kdeps run --once` builds one from `--input` pairs."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kdeps.llm.conversation import Conversation


@dataclass(slots=True)
class UploadedFile:
    """A file uploaded with the request, already saved to `path` (a per-request temp dir)."""

    field: str
    filename: str
    path: str
    mime: str
    size: int


@dataclass(slots=True)
class RequestData:
    method: str = "POST"
    path: str = "/"
    route: str = "/"  # the configured route pattern that matched, e.g. /api/v1/items/:id
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None  # parsed JSON object / form fields as dict, or raw text
    headers: dict[str, str] = field(default_factory=dict)  # keys lower-cased
    path_params: dict[str, str] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    client_ip: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    session_id: str | None = None
    session: dict[str, Any] = field(default_factory=dict)  # loaded by the server before the run
    conversation: Conversation | None = None  # the client's conversation on /v1/chat/completions


@dataclass(slots=True)
class ResponseData:
    status: int = 200
    body: Any = None  # JSON-serialisable
    headers: dict[str, str] = field(default_factory=dict)
    session_changed: bool = False  # the server persists RequestData.session when True
    resources: list[str] | None = None  # actionIds that ran, for the access log
    usage: dict[str, int] | None = None  # LLM tokens of the whole run: input_tokens, output_tokens
    trace: list[dict[str, Any]] | None = None  # per resource: status, durationMs, backend, model, tokens


_INDEXED = re.compile(r".+\[(\d+)\]")
# Form field names that mean "the uploaded file" in KDeps, whatever field it came in.
GENERIC_UPLOAD_NAMES = frozenset({"file", "file[]", "files"})


def find_upload(files: list[UploadedFile], name: str) -> UploadedFile | None:
    """The upload `name` refers to, as KDeps resolves it: `file[2]` by position, then the form field
    name, then the file name, then the saved path; `file`, `file[]` and `files` fall back to the
    first upload, so a `file[]` field is reached exactly as a `file` field is."""
    if not files:
        return None
    indexed = _INDEXED.fullmatch(name)
    if indexed and int(indexed.group(1)) < len(files):
        return files[int(indexed.group(1))]
    for attr in ("field", "filename", "path"):
        for upload in files:
            if getattr(upload, attr) == name:
                return upload
    return files[0] if name in GENERIC_UPLOAD_NAMES else None
