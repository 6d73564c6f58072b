"""The `input` and `request` objects of KDeps expressions (docs/v2/concepts/input-object.md and
request-object.md), evaluated in a resource's scope, and `type()` / `now()` as KDeps documents them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kdeps.engine.request import RequestData, UploadedFile
from kdeps.engine.scope import RequestState, Scope
from kdeps.expr import evaluate, render
from tests.agents import cli


@pytest.fixture
def scope(tmp_path: Path) -> Scope:
    doc = tmp_path / "doc.txt"
    doc.write_text("hello doc")
    image = tmp_path / "pic.png"
    image.write_bytes(b"\x89PNG")
    request = RequestData(
        method="POST", path="/api/v1/run", client_ip="10.0.0.7", request_id="req-42",
        body={"name": "Ann", "user": {"address": {"city": "Oslo"}}, "items": [1, 2, 3]},
        query={"page": "2"}, headers={"authorization": "Bearer t", "content-type": "multipart/form-data"},
        files=[UploadedFile("document", "doc.txt", str(doc), "text/plain", 9),
               UploadedFile("image", "pic.png", str(image), "image/png", 4)])
    return Scope(RequestState(request, {}), "example")


def ev(scope: Scope, source: str) -> Any:
    return evaluate(source, scope.env())


@pytest.mark.parametrize(("source", "expected"), [
    ("input.name", "Ann"),
    ("input['name']", "Ann"),
    ("input.user.address.city", "Oslo"),
    ("input.items[0]", 1),
    ("len(input.items)", 3),
    ("input.missing", None),
    ("default(input.missing, 'fallback')", "fallback"),
    ("input.items != nil && len(input.items) > 0", True),
    ("request.body.name", "Ann"),
    ("input.name == request.body.name && input.name == get('name')", True),
])
def test_input_object(scope: Scope, source: str, expected: Any) -> None:
    assert ev(scope, source) == expected


@pytest.mark.parametrize(("source", "expected"), [
    ("request.method", "POST"),
    ("request.path", "/api/v1/run"),
    ("request.IP", "10.0.0.7"),
    ("request.ID", "req-42"),
    ("request.query.page", "2"),
    ("request.headers['authorization']", "Bearer t"),
    ("request.headers.Authorization", "Bearer t"),
    ("request.headers['Content-Type']", "multipart/form-data"),
    ("request.params('page')", "2"),
    ("request.params('nope')", None),
    ("request.header('Authorization')", "Bearer t"),
    ("request.data().name", "Ann"),
    ("request.file('document')", "hello doc"),
    ("request.filetype('image')", "image/png"),
    ("request.filetype('nope')", None),
    ("request.filecount()", 2),
    ("request.filetypes()", ["text/plain", "image/png"]),
    ("len(request.files())", 2),
    ("len(request.filesByType('image/png'))", 1),
    ("len(request.filesByType('image/*'))", 1),
    ("request.method == 'POST' && request.path startsWith '/api/'", True),
])
def test_request_object(scope: Scope, source: str, expected: Any) -> None:
    assert ev(scope, source) == expected


def test_request_filepath_is_the_saved_upload(scope: Scope) -> None:
    assert ev(scope, "request.filepath('document')").endswith("doc.txt")
    assert ev(scope, "request.filesByType('text/plain')") == [ev(scope, "request.filepath('document')")]


def test_objects_in_templates_and_caller_variables_win(scope: Scope) -> None:
    assert render("Hello {{ input.name }} from {{ request.IP }}", scope.env()) == "Hello Ann from 10.0.0.7"
    assert evaluate("input", scope.env({"input": "mine"})) == "mine"
    assert evaluate("error.message", scope.env({"error": {"message": "x"}})) == "x"


def test_input_is_empty_without_a_body() -> None:
    scope = Scope(RequestState(RequestData(method="GET", body=None, query={"q": "x"}), {}), "r")
    assert evaluate("input", scope.env()) == {}
    assert evaluate("input.q", scope.env()) is None
    assert evaluate("input('q')", scope.env()) == "x"  # the function form keeps reading any source


def test_kdeps_eval_sees_input_and_request() -> None:
    proc = cli("eval", "input.q", "request.method", "--input", "q=hi")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line) for line in proc.stdout.splitlines()] == ["hi", "POST"]


@pytest.mark.parametrize(("source", "expected"), [
    ("type('a')", "string"), ("type(1)", "int"), ("type(1.5)", "float"), ("type(true)", "bool"),
    ("type([1])", "array"), ("type({'a': 1})", "map"), ("type(nil)", "nil"), ("type(now())", "time.Time"),
])
def test_type_names_as_documented(scope: Scope, source: str, expected: str) -> None:
    assert ev(scope, source) == expected


def test_now_is_a_time_written_as_go_writes_it(scope: Scope) -> None:
    value = ev(scope, "now()")
    assert isinstance(value, datetime) and value.tzinfo is not None
    assert ev(scope, "now() > date('2020-01-01')") is True
    text = ev(scope, "string(date('2024-12-25T14:30:00Z'))")
    assert text == "2024-12-25T14:30:00Z"
    assert ev(scope, "toJSON(date('2024-12-25T14:30:00.5+02:00'))") == '"2024-12-25T14:30:00.5+02:00"'
    # outside the language too (JSON bodies are written with default=str)
    assert json.dumps({"t": ev(scope, "date('2024-12-25')")}, default=str) == '{"t": "2024-12-25T00:00:00Z"}'
