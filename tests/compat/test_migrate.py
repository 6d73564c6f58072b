"""`kdeps migrate`: seed-era agents (metadata:/run:) rewritten into the current flat layout, with
comments kept, idempotent, in place (.bak), to --output, or as a --dry-run diff."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

WORKFLOW = """\
# Greeter: says hello (seed-era layout)
apiVersion: kdeps.io/v1
kind: Workflow
metadata:
  name: greeter
  version: "1.0.0"
  targetActionId: reply
settings:
  # serve over HTTP
  apiServerMode: true
  apiServer:
    hostIp: "127.0.0.1"
    portNum: 3000
    routes:
      - path: /api/v1/greet
        methods: [POST]
    cors:
      enableCors: true  # browsers too
      allowOrigins:
        - "*"
  webServerMode: true
  webServer:
    routes:
      - path: /ui
        serverType: static
        publicPath: ./public
  agentSettings:
    timezone: Etc/UTC
"""

SHOUT = """\
apiVersion: kdeps.io/v1
kind: Resource

metadata:
  actionId: shout
  name: Shout  # shown in logs
  description: Builds the greeting
  requires: []

items:
  - a
  - b

run:
  restrictToHttpMethods: [POST]
  restrictToRoutes: [/api/v1/greet]
  allowedHeaders: [X-Caller]
  allowedParams: [name, skip]
  skipCondition:
    - get('skip') == 'yes'

  # the name must be there
  preflightCheck:
    validations:
      - get('name') != ''
    error:
      code: 400
      message: name is required

  validation:
    required: [name]
    properties:
      name:
        type: string
        maxLength: 40
    customRules:
      - expr: len(get('name')) > 1
        message: name too short

  exprBefore:
    - set('greeting', 'hello')
  # say it in a shell
  exec:
    command: echo "{{ get('greeting') }} {{ get('name') }}"
    timeoutDuration: 5s
  expr:
    - set('done', true)
  exprAfter:
    - set('after', 1)  # runs last
  onError:
    action: continue
    fallback: nobody
"""

REPLY = """\
apiVersion: kdeps.io/v1
kind: Resource
metadata:
  actionId: reply
  name: Reply
  requires:
    - shout
run:
  chat:
    model: smollm2
    prompt: "Say {{ get('shout') }}"
    timeoutDuration: 30s
  apiResponse:
    success: true
    response:
      text: get('reply')
    meta:
      headers:
        X-Agent: greeter  # custom header
      statusCode: 201
"""


def _seed_agent(root: Path) -> Path:
    (root / "resources").mkdir(parents=True)
    (root / "public").mkdir()
    (root / "workflow.yaml").write_text(WORKFLOW)
    (root / "resources" / "shout.yaml").write_text(SHOUT)
    (root / "resources" / "reply.yaml").write_text(REPLY)
    return root


def _kdeps(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kdeps", *args], capture_output=True, text=True, timeout=60)


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_resource_keys_map_to_the_flat_layout(tmp_path):
    agent = _seed_agent(tmp_path / "seed")
    out = tmp_path / "flat"
    proc = _kdeps("migrate", str(agent), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    shout = _load(out / "resources" / "shout.yaml")
    assert list(shout) == ["actionId", "name", "description", "requires", "items", "validations", "before",
                           "exec", "after", "onError"]
    assert shout["actionId"] == "shout" and shout["requires"] == [] and shout["items"] == ["a", "b"]
    assert shout["validations"] == {
        "methods": ["POST"], "routes": ["/api/v1/greet"], "headers": ["X-Caller"], "params": ["name", "skip"],
        "skip": ["get('skip') == 'yes'"],
        "check": ["get('name') != ''"], "error": {"code": 400, "message": "name is required"},
        "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 40}},
        "expr": ["len(get('name')) > 1"],
    }
    assert shout["before"] == ["set('greeting', 'hello')"]
    assert shout["after"] == ["set('done', true)", "set('after', 1)"]  # expr ran after the action
    assert shout["exec"] == {"command": 'echo "{{ get(\'greeting\') }} {{ get(\'name\') }}"', "timeout": "5s"}
    assert shout["onError"] == {"action": "continue", "fallback": "nobody"}

    reply = _load(out / "resources" / "reply.yaml")
    assert "apiVersion" not in reply and "run" not in reply and "metadata" not in reply
    assert reply["chat"]["timeout"] == "30s" and "timeoutDuration" not in reply["chat"]
    assert reply["apiResponse"] == {"success": True, "response": {"text": "get('reply')"},
                                    "headers": {"X-Agent": "greeter"}, "statusCode": 201}


def test_workflow_switches_are_dropped(tmp_path):
    agent = _seed_agent(tmp_path / "seed")
    out = tmp_path / "flat"
    assert _kdeps("migrate", str(agent), "-o", str(out)).returncode == 0
    settings = _load(out / "workflow.yaml")["settings"]
    assert "apiServerMode" not in settings and "webServerMode" not in settings
    assert settings["apiServer"]["cors"] == {"allowOrigins": ["*"]}
    assert settings["webServer"]["routes"][0]["path"] == "/ui"
    assert (out / "public").is_dir()  # the rest of the agent comes along
    assert (agent / "workflow.yaml").read_text() == WORKFLOW  # --output leaves the original alone


def test_comments_and_quoting_are_kept(tmp_path):
    agent = _seed_agent(tmp_path / "seed")
    out = tmp_path / "flat"
    assert _kdeps("migrate", str(agent), "-o", str(out)).returncode == 0
    shout = (out / "resources" / "shout.yaml").read_text()
    for comment in ("# shown in logs", "# the name must be there", "# say it in a shell", "# runs last",
                    "# name too short"):
        assert comment in shout
    assert "\n# say it in a shell\nexec:" in shout  # moved to the top level with its key
    assert "\n  # the name must be there\n  check:" in shout
    reply = (out / "resources" / "reply.yaml").read_text()
    assert "# custom header" in reply and "prompt: \"Say {{ get('shout') }}\"" in reply
    workflow = (out / "workflow.yaml").read_text()
    assert workflow.startswith("# Greeter: says hello")
    assert "# serve over HTTP" in workflow and 'version: "1.0.0"' in workflow


def test_migration_is_idempotent(tmp_path):
    agent = _seed_agent(tmp_path / "seed")
    assert _kdeps("migrate", str(agent)).returncode == 0
    first = {p.name: p.read_text() for p in agent.rglob("*.yaml")}
    again = _kdeps("migrate", str(agent))
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert {p.name: p.read_text() for p in agent.rglob("*.yaml")} == first
    assert "would change" in _kdeps("migrate", str(agent), "--dry-run").stderr


def test_in_place_keeps_a_backup(tmp_path):
    agent = _seed_agent(tmp_path / "seed")
    proc = _kdeps("migrate", str(agent / "workflow.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert (agent / "resources" / "shout.yaml.bak").read_text() == SHOUT
    assert (agent / "workflow.yaml.bak").read_text() == WORKFLOW
    assert "actionId: shout" in (agent / "resources" / "shout.yaml").read_text()
    assert "migrated resources/shout.yaml" in proc.stdout


def test_dry_run_prints_a_diff_and_writes_nothing(tmp_path):
    agent = _seed_agent(tmp_path / "seed")
    proc = _kdeps("migrate", str(agent), "--dry-run")
    assert proc.returncode == 0
    assert "--- a/resources/shout.yaml" in proc.stdout and "+++ b/resources/shout.yaml" in proc.stdout
    assert "-  restrictToHttpMethods: [POST]" in proc.stdout and "+  methods: [POST]" in proc.stdout
    assert "-  apiServerMode: true" in proc.stdout
    assert (agent / "resources" / "shout.yaml").read_text() == SHOUT
    assert not list(agent.rglob("*.bak"))


def test_inline_resources_and_multi_document_files(tmp_path):
    agent = tmp_path / "inline"
    (agent / "resources").mkdir(parents=True)
    (agent / "workflow.yaml").write_text(textwrap.dedent("""\
        apiVersion: kdeps.io/v1
        kind: Workflow
        metadata:
          name: inline
          version: "1.0.0"
          targetActionId: answer
        settings:
          apiServer:
            routes:
              - path: /api/v1/q
                methods: [GET]
        resources:
          - apiVersion: kdeps.io/v1
            kind: Resource
            metadata:
              actionId: answer
              name: Answer
            run:
              exprBefore: set('x', 1)
              apiResponse:
                success: true
                response: {x: "get('x')"}
        """))
    (agent / "resources" / "two.yaml").write_text(textwrap.dedent("""\
        apiVersion: kdeps.io/v1
        kind: Resource
        metadata: {actionId: one, name: One}
        run:
          python:
            script: print(1)
            timeoutDuration: 3s
        ---
        apiVersion: kdeps.io/v1
        kind: Resource
        metadata: {actionId: two, name: Two}
        run:
          httpClient: {method: GET, url: "http://127.0.0.1:9/", timeoutDuration: 1s}
        """))
    assert _kdeps("migrate", str(agent)).returncode == 0
    inline = _load(agent / "workflow.yaml")["resources"][0]
    assert inline == {"actionId": "answer", "name": "Answer", "before": ["set('x', 1)"],
                      "apiResponse": {"success": True, "response": {"x": "get('x')"}}}
    docs = list(yaml.safe_load_all((agent / "resources" / "two.yaml").read_text()))
    assert docs == [
        {"actionId": "one", "name": "One", "python": {"script": "print(1)", "timeout": "3s"}},
        {"actionId": "two", "name": "Two", "httpClient": {"method": "GET", "url": "http://127.0.0.1:9/",
                                                          "timeout": "1s"}},
    ]


def test_errors_name_file_and_line_without_traceback(tmp_path):
    agent = tmp_path / "bad"
    (agent / "resources").mkdir(parents=True)
    (agent / "workflow.yaml").write_text(WORKFLOW)
    (agent / "resources" / "broken.yaml").write_text(
        "apiVersion: kdeps.io/v1\nkind: Resource\nmetadata:\n  actionId: x\n  name: X\nrun:\n  - chat\n")
    proc = _kdeps("migrate", str(agent))
    assert proc.returncode == 1
    assert f"{agent / 'resources' / 'broken.yaml'}:6: run must be a mapping" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(agent.rglob("*.bak"))  # nothing is written when any file fails

    (agent / "resources" / "broken.yaml").write_text("metadata:\n  actionId: [x\nrun: {}\n")
    proc = _kdeps("migrate", str(agent))
    assert proc.returncode == 1 and "broken.yaml:3: YAML syntax error" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_migration_error_is_a_kdeps_error(tmp_path):
    from kdeps.errors import KdepsError
    from kdeps.migrate import migrate_agent

    (tmp_path / "workflow.yaml").write_text("apiVersion: kdeps.io/v1\nkind: Resource\nrun: [chat]\n")
    try:
        migrate_agent(tmp_path)
    except KdepsError as err:
        assert str(err) == f"{tmp_path / 'workflow.yaml'}:3: run must be a mapping"
    else:
        raise AssertionError("no error")


def test_output_must_be_empty(tmp_path):
    agent = _seed_agent(tmp_path / "seed")
    out = tmp_path / "taken"
    out.mkdir()
    (out / "x").write_text("keep")
    proc = _kdeps("migrate", str(agent), "-o", str(out))
    assert proc.returncode == 1 and "not empty" in proc.stderr
    assert (out / "x").read_text() == "keep"


def test_migrated_agent_loads(tmp_path):
    """The migrated agent loads with the project's loader (needs the flat-layout loader)."""
    from kdeps.spec import load_project

    agent = _seed_agent(tmp_path / "seed")
    assert _kdeps("migrate", str(agent)).returncode == 0
    project = load_project(agent)
    assert set(project.resources) == {"shout", "reply"}


PREPARE = """\
apiVersion: kdeps.io/v1
kind: Resource
metadata:
  actionId: fetch
  name: Fetch

run:
  # only for GET
  restrictToHttpMethods: [GET]

  # remember the query
  expr:
    - set('q2', get('q'))

  # call the service
  httpClient:
    method: GET
    url: http://127.0.0.1:9/search
    retry:
      maxAttempts: 2

    # cache answers
    cache:
      enabled: true
      ttl: 1m
"""


def test_comment_above_each_run_key_moves_with_it(tmp_path):
    agent = _seed_agent(tmp_path / "seed")
    (agent / "resources" / "fetch.yaml").write_text(PREPARE)
    proc = _kdeps("migrate", str(agent))
    assert proc.returncode == 0, proc.stderr
    text = (agent / "resources" / "fetch.yaml").read_text()
    assert "# only for GET\nvalidations:\n  methods: [GET]" in text
    assert "# call the service\nhttpClient:" in text
    assert "\n  # cache answers\n  cache:\n    ttl: 1m" in text  # nested comment dedented with its block
    assert "# remember the query\nafter:" in text
    assert "enabled" not in text  # a present cache block is on
    # expr ran after the action in KDeps' engine; written above it, the user is told how to keep intent
    assert "fetch.yaml:12: run.expr is written before httpClient" in proc.stderr


def test_disabled_cors_and_cache_blocks_are_removed(tmp_path):
    agent = _seed_agent(tmp_path / "seed")
    (agent / "workflow.yaml").write_text(WORKFLOW.replace("enableCors: true", "enableCors: false"))
    (agent / "resources" / "fetch.yaml").write_text(PREPARE.replace("enabled: true", "enabled: false"))
    proc = _kdeps("migrate", str(agent))
    assert proc.returncode == 0, proc.stderr
    assert "cors" not in _load(agent / "workflow.yaml")["settings"]["apiServer"]
    assert "cache" not in _load(agent / "resources" / "fetch.yaml")["httpClient"]
    assert "enableCors was false" in proc.stderr and "cache.enabled was false" in proc.stderr
