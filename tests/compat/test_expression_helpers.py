"""KDeps' `ternary(cond, a, b)` helper, in an expression and in a resource."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdeps.expr import Env, evaluate
from tests.agents import run_agent
from tests.compat.test_layouts import write


@pytest.mark.parametrize(("source", "expected"), [
    ("ternary(1 == 1, 'yes', 'no')", "yes"),
    ("ternary(1 == 2, 'yes', 'no')", "no"),
    ("ternary('true', 'yes', 'no')", "no"),  # only the boolean true picks the first, as KDeps
    ("ternary(nil, 1, 2)", 2),
])
def test_ternary(source: str, expected: object) -> None:
    assert evaluate(source, Env()) == expected


async def test_ternary_in_a_resource_validates_and_runs(tmp_path: Path) -> None:
    root = write(tmp_path, {"response.yaml": """\
        actionId: response
        name: Response
        apiResponse:
          response:
            admin: "{{ ternary(get('role') == 'admin', 'Admin', 'User') }}"
        """})
    reply = await run_agent(root, {"role": "admin"})
    assert reply.body["data"] == {"admin": "Admin"}
