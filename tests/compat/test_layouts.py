"""Both YAML layouts — seed-era (`metadata:`/`run:`) and current (flat, PR #320 upstream) — load into
one plan and run with the Go engine's order: checks → items → before → primary → after → apiResponse."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kdeps.errors import SpecErrors
from kdeps.spec import load_project
from tests.agents import cli, run_agent

WORKFLOW = """\
apiVersion: kdeps.io/v1
kind: Workflow
metadata:
  name: compat
  version: "1.0.0"
  targetActionId: {target}
settings:
  apiServer:
    routes:
      - path: /api/v1/run
        methods: [GET, POST]
"""


def write(root: Path, files: dict[str, str], target: str = "response", workflow_extra: str = "") -> Path:
    """An agent folder: workflow.yaml (+ `workflow_extra` appended verbatim) and resources/NAME."""
    (root / "resources").mkdir(parents=True, exist_ok=True)
    (root / "workflow.yaml").write_text(WORKFLOW.format(target=target) + workflow_extra)
    for name, body in files.items():
        (root / "resources" / name).write_text(textwrap.dedent(body))
    return root


SEED = {
    "shout.yaml": """\
        apiVersion: kdeps.io/v1
        kind: Resource
        metadata:
          actionId: shout
        run:
          restrictToHttpMethods: [POST]
          restrictToRoutes: [/api/v1/run]
          preflightCheck:
            validations:
              - get('q') != ''
            error:
              code: 422
              message: q is required
          exprBefore:
            - set('prefix', 'Q')
          exec:
            command: "printf '%s' \\"{{ get('q') }}\\""
            timeoutDuration: 5s
          expr:
            - set('len', len(get('shout')))
    """,
    "response.yaml": """\
        apiVersion: kdeps.io/v1
        kind: Resource
        metadata:
          actionId: response
          requires: [shout]
        run:
          apiResponse:
            success: true
            response:
              text: "{{ get('prefix') }}: {{ upper(get('shout')) }}"
              length: get('len')
            meta:
              headers:
                X-Layout: seed
    """,
}

CURRENT = {
    "shout.yaml": """\
        actionId: shout
        validations:
          methods: [POST]
          routes: [/api/v1/run]
          check:
            - get('q') != ''
          error:
            code: 422
            message: q is required
        before:
          - set('prefix', 'Q')
        exec:
          command: "printf '%s' \\"{{ get('q') }}\\""
          timeout: 5s
        after:
          - set('len', len(get('shout')))
    """,
    "response.yaml": """\
        actionId: response
        requires:
          - shout
        apiResponse:
          success: true
          response:
            text: "{{ get('prefix') }}: {{ upper(get('shout')) }}"
            length: get('len')
          headers:
            X-Layout: current
    """,
}


@pytest.mark.parametrize(("layout", "files"), [("seed-era", SEED), ("current", CURRENT)])
async def test_same_agent_in_either_layout_answers_the_same(tmp_path: Path, layout: str,
                                                            files: dict[str, str]) -> None:
    root = write(tmp_path, files)
    project = load_project(root)
    assert project.layouts == {layout}
    assert project.resources["shout"].timeout == 5.0
    reply = await run_agent(root, {"q": "hello"})
    assert reply.status == 200, reply.body
    assert reply.body["data"] == {"text": "Q: HELLO", "length": 5}
    assert reply.headers["X-Layout"] == ("seed" if layout == "seed-era" else "current")
    missing = await run_agent(root, {"q": ""})
    assert missing.status == 422 and missing.body["error"]["message"] == "q is required"


def test_validate_names_the_layout(tmp_path: Path) -> None:
    root = write(tmp_path, {"shout.yaml": SEED["shout.yaml"], "response.yaml": CURRENT["response.yaml"]})
    out = cli("validate", str(root))
    assert out.returncode == 0, out.stderr
    assert "layout: current and seed-era" in out.stdout  # both layouts may mix in one agent


async def test_resources_inline_in_workflow_yaml(tmp_path: Path) -> None:
    root = write(tmp_path, {}, workflow_extra=textwrap.dedent("""\
        resources:
          - actionId: greet
            before:
              - set('who', default(get('name'), 'world'))
            apiResponse:
              response:
                greeting: "Hello, {{ get('who') }}!"
          - actionId: response
            requires: [greet]
            apiResponse:
              response: get('greet')
        """))
    project = load_project(root)
    assert list(project.resources) == ["greet", "response"]
    assert project.locations["greet"][0].name == "workflow.yaml"
    reply = await run_agent(root, {"name": "Ada"})
    assert reply.body["data"] == {"success": True, "data": {"greeting": "Hello, Ada!"}}


async def test_primary_action_and_api_response_share_a_resource(tmp_path: Path) -> None:
    root = write(tmp_path, {"response.yaml": """\
        actionId: response
        before:
          - set('order', ['before'])
          - exec:
              command: "printf inline-before"
        python:
          script: |
            print("primary")
        after:
          - set('order', concat(get('order'), ['after:' + get('response')]))
          - python:
              script: print("inline-after")
        apiResponse:
          response:
            primary: get('response')
            order: get('order')
        """})
    reply = await run_agent(root, {})
    assert reply.status == 200, reply.body
    assert reply.body["data"] == {"primary": "primary", "order": ["before", "after:primary"]}


async def test_skip_and_restrictions_in_validations(tmp_path: Path) -> None:
    root = write(tmp_path, {"a.yaml": """\
        actionId: a
        validations:
          skip:
            - get('mode') == 'dry-run'
        exec:
          command: printf ran
        """, "b.yaml": """\
        actionId: b
        validations:
          methods: [DELETE]
        exec:
          command: printf ran
        """, "response.yaml": """\
        actionId: response
        requires: [a, b]
        apiResponse:
          response:
            a: get('a')
            b: get('b')
        """})
    assert (await run_agent(root, {"mode": "real"})).body["data"] == {"a": "ran", "b": None}
    assert (await run_agent(root, {"mode": "dry-run"})).body["data"] == {"a": None, "b": None}


async def test_items_expand_lists_and_stay_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDEPS_TEST_SECRET", "s3cr3t")
    root = write(tmp_path, {"each.yaml": """\
        actionId: each
        items:
          - "first"
          - get('xs')
        apiResponse:
          response: get('current')
        """, "response.yaml": """\
        actionId: response
        requires: [each]
        apiResponse:
          response: get('each', 'itemvalues')
        """})
    payload = ["{{ get('KDEPS_TEST_SECRET', 'env') }}", "get('KDEPS_TEST_SECRET', 'env')", "x"]
    reply = await run_agent(root, {"xs": payload})
    values = [v["data"] for v in reply.body["data"]]
    assert values == ["first", *payload]  # a list-valued entry expands; its elements are never evaluated
    assert "s3cr3t" not in str(reply.body)


async def test_seed_items_expression_elements_are_data(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDEPS_TEST_SECRET", "s3cr3t")
    root = write(tmp_path, {"response.yaml": """\
        apiVersion: kdeps.io/v1
        kind: Resource
        metadata:
          actionId: response
        items: get('xs')
        run:
          apiResponse:
            response: get('current')
        """})
    reply = await run_agent(root, {"xs": ["{{ get('KDEPS_TEST_SECRET', 'env') }}"]})
    assert "s3cr3t" not in str(reply.body)
    assert reply.body[0]["data"] == "{{ get('KDEPS_TEST_SECRET', 'env') }}"  # the target's items


async def test_unbraced_values_follow_kdeps_detection(tmp_path: Path) -> None:
    root = write(tmp_path, {"response.yaml": """\
        actionId: response
        apiResponse:
          response:
            upper: upper(get('q'))
            length: len(get('q'))
            fallback: default(get('missing'), 'none')
            compare: get('n') >= 3
            mime: application/json
            agent: Mozilla/5.0 (X11; Linux x86_64)
            url: https://example.com/a?b=c
            text: Hello world
            literal_call: upper('x')
        """})
    reply = await run_agent(root, {"q": "abc", "n": 4})
    assert reply.body["data"] == {
        "upper": "ABC", "length": 3, "fallback": "none", "compare": True, "mime": "application/json",
        "agent": "Mozilla/5.0 (X11; Linux x86_64)", "url": "https://example.com/a?b=c",
        "text": "Hello world", "literal_call": "upper('x')"}


def errors(root: Path) -> list[str]:
    with pytest.raises(SpecErrors) as info:
        load_project(root)
    return [str(e) for e in info.value.errors]


def test_current_layout_errors_are_located_with_did_you_mean(tmp_path: Path) -> None:
    root = write(tmp_path, {"response.yaml": """\
        actionId: response
        validatons:
          methods: [GET]
        apiResponse:
          respons: 1
        """})
    found = errors(root)
    assert any(e.endswith("response.yaml:2:1: unknown key 'validatons' (did you mean 'validations'?)")
               for e in found), found
    assert any("response.yaml:5:3: unknown key 'respons' in apiResponse (did you mean 'response'?)" in e
               for e in found), found


@pytest.mark.parametrize(("body", "feature", "line"), [
    ("actionId: response\nsql:\n  query: SELECT 1\n", "sql", 2),
    ("actionId: response\nemail:\n  to: a@b.c\n", "email", 2),
    ("actionId: response\nbefore:\n  - embedding:\n      model: m\n", "embedding", 3),
    ("apiVersion: kdeps.io/v1\nkind: Resource\nmetadata:\n  actionId: response\nrun:\n  scraper: {}\n",
     "scraper", 6),
])
def test_features_not_implemented_say_so(tmp_path: Path, body: str, feature: str, line: int) -> None:
    root = write(tmp_path, {"response.yaml": body})
    found = errors(root)
    assert found == [f"{root / 'resources' / 'response.yaml'}:{line}:"
                     f"{found[0].split(':')[2]}: `{feature}` is not supported by this implementation"
                     + (" (query the database from a python or exec resource)" if feature == "sql" else "")]
    assert "unknown key" not in found[0] and "did you mean" not in found[0]


def test_non_http_input_sources_are_not_supported(tmp_path: Path) -> None:
    root = write(tmp_path, {"response.yaml": "actionId: response\napiResponse:\n  response: 1\n"},
                 workflow_extra="  input:\n    sources: [bot]\n")
    [error] = errors(root)
    assert "workflow.yaml:" in error and "input source 'bot' is not supported by this implementation" in error


def test_ignored_keys_are_warned_about(tmp_path: Path) -> None:
    root = write(tmp_path, {"response.yaml": """\
        actionId: response
        python:
          script: print(1)
          venvName: analysis
        """})
    out = cli("validate", str(root))
    assert out.returncode == 0
    assert "warning:" in out.stderr and "response.yaml:4:3: python.venvName has no effect" in out.stderr


def test_web_server_only_agent_validates(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    (tmp_path / "workflow.yaml").write_text(textwrap.dedent("""\
        apiVersion: kdeps.io/v1
        kind: Workflow
        metadata:
          name: site
          targetActionId: none
        settings:
          webServer:
            portNum: 8080
            routes:
              - path: /
                serverType: static
                publicPath: ./public
        """))
    project = load_project(tmp_path)
    assert project.resources == {}


def test_bad_expression_is_a_load_error_with_location(tmp_path: Path) -> None:
    root = write(tmp_path, {"response.yaml": """\
        actionId: response
        validations:
          check:
            - get('q' != ''
        apiResponse:
          response: 1
        """})
    [error] = errors(root)
    assert "response.yaml:4:" in error and "bad expression" in error and "get('q' != ''" in error


async def test_expression_only_resource_reports_its_status(tmp_path: Path) -> None:
    root = write(tmp_path, {"setup.yaml": """\
        actionId: setup
        before:
          - set('x', 1)
        """, "response.yaml": """\
        actionId: response
        requires: [setup]
        apiResponse:
          response:
            setup: get('setup')
            x: get('x')
        """})
    reply = await run_agent(root, {})
    assert reply.body["data"] == {"setup": {"status": "expressions_executed"}, "x": 1}


async def test_seed_run_keys_at_the_top_level_of_a_flat_resource(tmp_path: Path) -> None:
    root = write(tmp_path, {"response.yaml": """\
        actionId: response
        restrictToHttpMethods: [POST]
        restrictToRoutes: [/api/v1/run]
        preflightCheck:
          validations:
            - get('q') != ''
          error:
            code: 418
            message: need q
        exprBefore:
          - set('x', 'before')
        apiResponse:
          response:
            x: get('x')
        """})
    assert (await run_agent(root, {"q": "a"})).body["data"] == {"x": "before"}
    assert (await run_agent(root, {})).status == 418
    assert (await run_agent(root, {"q": "a"}, method="GET")).body["data"] is None  # restricted
