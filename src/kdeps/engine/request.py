"""What the engine receives for one request and what it answers. The server builds a RequestData;
`kdeps run --once` builds one from `--input` pairs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
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
    records: Mapping[str, Any] | None = None  # the run's ResourceRecords, read by `usage` and `trace`

    @property
    def usage(self) -> dict[str, int] | None:
        """LLM tokens of the whole run (input_tokens, output_tokens), None when no model was called."""
        records = (self.records or {}).values()
        usages = [r.meta["usage"] for r in records if isinstance(r.meta.get("usage"), dict)]
        if not usages:
            return None
        return {key: sum(int(u.get(key) or 0) for u in usages) for key in ("input_tokens", "output_tokens")}

    @property
    def trace(self) -> list[dict[str, Any]] | None:
        """Per resource that ran: status, durationMs, backend, model, tokens (what the playground shows).
        Built when read: most responses are never traced."""
        if self.records is None:
            return None
        return [_trace_row(aid, record) for aid, record in self.records.items()]


def _trace_row(aid: str, record: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"resource": aid, "status": record.meta.get("status"),
                           "durationMs": record.meta.get("durationMs")}
    usage = record.meta.get("usage")
    if isinstance(usage, dict):
        row.update({k: usage.get(k) for k in ("backend", "model", "input_tokens", "output_tokens",
                                              "finish_reason") if usage.get(k) is not None})
    if isinstance(record.meta.get("error"), dict):
        row["error"] = record.meta["error"].get("message")
    return row


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
