"""Turning an HTTP request into the engine's RequestData: body, form fields, uploads, client IP."""

from __future__ import annotations

import asyncio
import ipaddress
import mimetypes
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import filetype
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from kdeps.engine.request import UploadedFile
from kdeps.errors import HTTPError, KdepsError
from kdeps.server.limits import JSONTooDeep, loads_json

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BodyTooLarge(HTTPError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


def parse_networks(entries: list[str]) -> list[Network]:
    """`trustedProxies` entries (addresses or CIDR blocks) as networks; a bad entry is a startup error."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise KdepsError(f"apiServer.trustedProxies: '{entry}' is not an IP address or CIDR block"
                             ) from None
    return networks


def is_trusted(address: str, networks: list[Network]) -> bool:
    """True when `address` is in one of the trusted proxy networks."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(peer: str, forwarded_for: str | None, trusted: list[Network]) -> str:
    """The client's address. X-Forwarded-For counts only when the peer is a trusted proxy; it is read
    right to left and the first address that is not itself a trusted proxy is the client."""
    if not forwarded_for or not trusted or not is_trusted(peer, trusted):
        return peer
    nearest = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return nearest  # garbage in the header: stop at the last address we can vouch for
        if not is_trusted(hop, trusted):
            return hop
        nearest = hop
    return nearest


def query_dict(query_string: bytes) -> dict[str, Any]:
    """Query parameters; a repeated name gives a list of its values."""
    return _form_dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))


def _form_dict(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Name/value pairs as a dict; a repeated name gives a list of its values."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out


def parse_body(raw: bytes, content_type: str) -> Any:
    """JSON object for JSON bodies (malformed JSON with a JSON content type is a 400), form fields for
    urlencoded bodies, else text. `curl -d '{...}'` sends JSON labelled as a form, so a form body that
    parses as JSON is taken as JSON."""
    if not raw:
        return None
    ctype = content_type.split(";", 1)[0].strip().lower()
    is_json_type = ctype == "application/json" or ctype.endswith("+json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        if is_json_type:
            raise HTTPError(400, "request body is not valid UTF-8") from None
        text = raw.decode("latin-1")
    stripped = text.lstrip()
    if is_json_type or (stripped[:1] in ("{", "[") and ctype in ("", "application/x-www-form-urlencoded",
                                                                  "text/plain")):
        try:
            return loads_json(text)
        except JSONTooDeep as exc:
            raise HTTPError(400, f"request body rejected: {exc}") from None
        except ValueError as exc:
            if is_json_type:
                raise HTTPError(400, f"malformed JSON body: {exc}") from None
    if ctype == "application/x-www-form-urlencoded":
        return _form_dict(parse_qsl(text, keep_blank_values=True))
    return text


def _safe_name(filename: str | None) -> str:
    # some clients percent-encode the name; decode first so '..%2F' cannot survive as part of it
    name = os.path.basename(unquote(filename or "").replace("\\", "/")).lstrip(".").strip()
    return name[:200] or "upload"


def _detect_mime(path: Path, declared: str | None, filename: str) -> str:
    kind = filetype.guess(str(path))
    if kind is not None:
        return str(kind.mime)
    if declared and declared != "application/octet-stream":
        return declared.split(";", 1)[0].strip()
    return mimetypes.guess_type(filename)[0] or declared or "application/octet-stream"


def _save_uploads(uploads: list[tuple[str, UploadFile]], folder: Path) -> list[UploadedFile]:
    saved = []
    for field_name, upload in uploads:
        name = _safe_name(upload.filename)
        target = folder / name
        n = 1
        while target.exists():
            target = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
            n += 1
        upload.file.seek(0)
        with open(target, "wb") as out:
            shutil.copyfileobj(upload.file, out, 1024 * 1024)
        saved.append(UploadedFile(field=field_name, filename=upload.filename or name, path=str(target),
                                  mime=_detect_mime(target, upload.content_type, name),
                                  size=target.stat().st_size))
    return saved


async def read_multipart(request: Request,
                         max_part: int) -> tuple[dict[str, Any], list[UploadedFile], str | None]:
    """Form fields, uploaded files (saved to a fresh temp dir) and that dir (None when no files)."""
    try:
        form = await request.form(max_files=1000, max_fields=1000, max_part_size=max_part)
    except MultiPartException as exc:
        raise HTTPError(400, f"malformed multipart body: {exc.message}") from None
    try:
        fields: list[tuple[str, str]] = []
        uploads: list[tuple[str, UploadFile]] = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads.append((key, value))
            else:
                fields.append((key, value))
        if not uploads:
            return _form_dict(fields), [], None
        folder = tempfile.mkdtemp(prefix="kdeps-upload-")
        try:
            files = await asyncio.to_thread(_save_uploads, uploads, Path(folder))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return _form_dict(fields), files, folder
    finally:
        await form.close()
