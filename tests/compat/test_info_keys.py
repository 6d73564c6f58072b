"""info(): every key KDeps' engine knows (pkg/executor/context_info.go), the aliases its docs use, and
an error naming the valid keys for any other."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kdeps.engine.request import RequestData, UploadedFile
from kdeps.engine.scope import AgentInfo, RequestState, Scope
from kdeps.errors import ExprError
from kdeps.expr import evaluate

RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def make_scope(items: dict[str, Any] | None = None) -> Scope:
    request = RequestData(method="PUT", path="/api/v1/items/7", route="/api/v1/items/:id",
                          client_ip="10.1.2.3",
                          request_id="rid-1", session_id="sess-9",
                          files=[UploadedFile("file", "a.pdf", "/tmp/x/a.pdf", "application/pdf", 3)])
    state = RequestState(request, {}, agent=AgentInfo("my-agent", "2.1.0", "Does things"))
    return Scope(state, "lookup", items=items)


@pytest.mark.parametrize(("key", "expected"), [
    ("name", "my-agent"), ("workflow.name", "my-agent"),
    ("version", "2.1.0"), ("workflow.version", "2.1.0"),
    ("description", "Does things"), ("workflow.description", "Does things"),
    ("method", "PUT"), ("request.method", "PUT"),
    ("path", "/api/v1/items/7"), ("request.path", "/api/v1/items/7"),
    ("IP", "10.1.2.3"), ("request.IP", "10.1.2.3"), ("clientIp", "10.1.2.3"),
    ("ID", "rid-1"), ("request.ID", "rid-1"), ("request_id", "rid-1"), ("requestId", "rid-1"),
    ("session_id", "sess-9"), ("sessionId", "sess-9"),
    ("filecount", 1), ("files", ["/tmp/x/a.pdf"]), ("filenames", ["a.pdf"]),
    ("filetypes", ["application/pdf"]),
])
def test_known_keys(key: str, expected: Any) -> None:
    assert evaluate(f"info('{key}')", make_scope().env()) == expected


@pytest.mark.parametrize("key", ["current_time", "timestamp", "now", "time"])
def test_time_keys_are_rfc3339(key: str) -> None:
    assert RFC3339.fullmatch(evaluate(f"info('{key}')", make_scope().env()))


def test_item_keys() -> None:
    scope = make_scope({"current": "b", "index": 1, "count": 3, "prev": "a", "next": "c"})
    values = [evaluate(f"info('{k}')", scope.env()) for k in ("current", "index", "count", "prev", "next")]
    assert values == ["b", 1, 3, "a", "c"]


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ExprError) as caught:
        evaluate("info('nmae')", make_scope().env())
    message = str(caught.value)
    assert "unknown key 'nmae'" in message and "did you mean 'name'?" in message
    for key in ("current_time", "filecount", "request.IP", "session_id", "workflow.version"):
        assert key in message


def test_get_falls_back_to_metadata_but_not_to_unknown_keys() -> None:
    scope = make_scope()
    assert evaluate("get('version')", scope.env()) == "2.1.0"
    assert evaluate("get('nothing')", scope.env()) is None
    assert evaluate("get('nothing', 'dflt')", scope.env()) == "dflt"
    assert evaluate("get('name', 'Anonymous')", scope.env()) == "Anonymous"  # the author's default wins
