"""`loop:` (while-style iteration with `loop.index()/count()/results()`, `maxIterations`, `every`)
and the `workflow`/`config` namespaces, as upstream KDeps documents them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.agents import run_agent
from tests.compat.test_layouts import write


async def test_loop_runs_while_the_condition_holds(tmp_path: Path) -> None:
    root = write(tmp_path, {"response.yaml": """\
        actionId: response
        loop:
          while: "loop.index() < 3"
        after:
          - "{{ set('tick', loop.count()) }}"
        apiResponse:
          response:
            tick: "{{ get('tick') }}"
            before: "{{ len(loop.results()) }}"
        """})
    reply = await run_agent(root, {})
    assert reply.status == 200, reply.body
    assert [r["data"] for r in reply.body] == [
        {"tick": 1, "before": 0}, {"tick": 2, "before": 1}, {"tick": 3, "before": 2}]


async def test_loop_stops_at_max_iterations_and_keeps_loop_scoped_values(tmp_path: Path) -> None:
    root = write(tmp_path, {"counter.yaml": """\
        actionId: counter
        loop:
          while: "true"
          maxIterations: 4
        before:
          - "set('n', default(get('n', 'loop'), 0) + 1, 'loop')"
        exec:
          command: "printf '%s' {{ get('n', 'loop') }}"
        """, "response.yaml": """\
        actionId: response
        requires: [counter]
        apiResponse:
          response: get('counter')
        """})
    reply = await run_agent(root, {})
    assert reply.body["data"] == ["1", "2", "3", "4"]


async def test_loop_condition_sees_results_so_far(tmp_path: Path) -> None:
    root = write(tmp_path, {"response.yaml": """\
        actionId: response
        loop:
          while: "len(loop.results()) < 2"
          every: 10ms
          maxIterations: 10
        python:
          script: print("x")
        """})
    reply = await run_agent(root, {})
    assert reply.body["data"] == ["x", "x"]


async def test_workflow_and_config_namespaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("llm:\n  model: llama3.2:1b\n")
    monkeypatch.setenv("KDEPS_CONFIG", str(config))
    root = write(tmp_path / "agent", {"response.yaml": textwrap.dedent("""\
        actionId: response
        apiResponse:
          response:
            name: "{{ workflow.metadata.name }}"
            version: workflow.metadata.version
            by_get: "{{ get('workflow.metadata.name') }}"
            model: "{{ config.llm.model }}"
            fallback: "{{ get('config.defaults.timezone', 'UTC') }}"
        """)})
    reply = await run_agent(root, {})
    assert reply.body["data"] == {"name": "compat", "version": "1.0.0", "by_get": "compat",
                                      "model": "llama3.2:1b", "fallback": "UTC"}


async def test_input_function_with_a_type_or_a_default(tmp_path: Path) -> None:
    root = write(tmp_path, {"response.yaml": """\
        actionId: response
        apiResponse:
          response:
            fmt: "{{ input('format', 'json') }}"
            given: "{{ input('operation', 'validate') }}"
            body: "{{ input('operation', 'body') }}"
            header: "{{ input('x-mode', 'header') }}"
        """})
    reply = await run_agent(root, {"operation": "pretty"}, headers={"X-Mode": "fast"})
    assert reply.body["data"] == {"fmt": "json", "given": "pretty", "body": "pretty", "header": "fast"}
