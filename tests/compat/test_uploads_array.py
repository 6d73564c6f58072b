"""Uploads sent as `file[]` multipart fields are reached exactly as `file` fields are: `get('file',
...)`, `file[N]` by position, info('files'), and chat `files:` entries naming `file`."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path

import pytest

from kdeps.actions.chat_files import _uploaded
from kdeps.engine.request import UploadedFile, find_upload
from tests.agents import make_agent
from tests.e2e.server_utils import running

UPLOAD_AGENT = """\
metadata:
  actionId: response
run:
  apiResponse:
    success: true
    response:
      first: "{{ get('file', 'file') }}"
      firstType: "{{ get('file', 'filetype') }}"
      second: "{{ get('file[1]', 'file') }}"
      arrayName: "{{ get('file[]', 'file') }}"
      count: "{{ info('filecount') }}"
      names: "{{ info('filenames') }}"
"""


def post_files(url: str, field: str, files: list[tuple[str, bytes]]) -> dict:
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                     f"Content-Type: text/plain\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_file_array_field_reads_like_file_field(tmp_path: Path) -> None:
    root = make_agent(tmp_path, {"response": UPLOAD_AGENT})
    files = [("a.txt", b"alpha"), ("b.txt", b"beta")]
    with running(root) as server:
        plain = post_files(f"{server.url}/api/v1/run", "file", files)
        array = post_files(f"{server.url}/api/v1/run", "file[]", files)
    expected = {"first": "alpha", "firstType": "text/plain", "second": "beta", "arrayName": "alpha",
                "count": 2, "names": ["a.txt", "b.txt"]}
    assert plain["data"] == expected, plain
    assert array["data"] == expected, array


UPLOADS = [UploadedFile("file[]", "a.png", "/tmp/u/a.png", "image/png", 1),
           UploadedFile("file[]", "b.png", "/tmp/u/b.png", "image/png", 1)]


@pytest.mark.parametrize(("name", "path"), [
    ("file", "/tmp/u/a.png"), ("file[]", "/tmp/u/a.png"), ("files", "/tmp/u/a.png"),
    ("file[1]", "/tmp/u/b.png"), ("b.png", "/tmp/u/b.png"), ("/tmp/u/b.png", "/tmp/u/b.png"),
    ("other", None), ("file[7]", None)])
def test_upload_lookup(name: str, path: str | None) -> None:
    found = find_upload(UPLOADS, name)
    assert (found.path if found else None) == path
    assert (str(_uploaded(name, UPLOADS)) if path else _uploaded(name, UPLOADS)) == path
