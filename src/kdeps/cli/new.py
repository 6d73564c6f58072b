"""`kdeps new`: a runnable agent scaffold, from one of KDeps' project templates."""

from __future__ import annotations

import difflib
from pathlib import Path

import click

DEFAULT_TEMPLATE = "api-service"
DEFAULT_PORT = 16395

# Templates KDeps ships that need features this implementation does not have.
UNSUPPORTED_TEMPLATES = {
    "sql-agent": "sql resources",
    "agency": "agencies (several agents in one project)",
}

WORKFLOW = """\
apiVersion: kdeps.io/v1
kind: Workflow

metadata:
  name: {name}
  description: {description}
  version: "{version}"
  targetActionId: response

settings:
  apiServer:
    hostIp: "127.0.0.1"
    portNum: {port}
    routes:
      - path: /api/v1/chat
        methods: [POST]
"""

LLM = """\
actionId: llm
name: LLM Chat

validations:
  methods: [POST]
  routes: [/api/v1/chat]
  check:
    - get('q') != ''
  error:
    code: 400
    message: "'q' is required"

chat:
  backend: {backend}
  model: {model}
  role: user
  prompt: "{{{{ get('q') }}}}"
  scenario:
    - role: system
      prompt: You are a helpful assistant. Answer in one sentence.
  maxTokens: 128
  timeout: 60s
"""

RESPONSE = """\
actionId: response
name: API Response
requires:
  - llm

validations:
  methods: [POST]
  routes: [/api/v1/chat]

apiResponse:
  success: true
  response:
    answer: get('llm')
    query: get('q')
"""

README = """\
# {name}

{description}

## Run

```bash
kdeps run . --once --input q='What is AI?'     # one request, printed as JSON
kdeps run . --dev                              # serve on http://127.0.0.1:{port}, reload on change
```

```bash
curl -X POST http://127.0.0.1:{port}/api/v1/chat \\
  -H "Content-Type: application/json" -d '{{"q": "Hello!"}}'
```

Serving on another address than 127.0.0.1 needs an API token: set `KDEPS_API_AUTH_TOKEN` and send
`Authorization: Bearer <token>`.

## Files

- `workflow.yaml`: the API server, its route, and the resource that answers (`targetActionId`)
- `resources/llm.yaml`: checks the input and asks the model ({backend} backend, model {model})
- `resources/response.yaml`: shapes the JSON answer

## Package

```bash
kdeps bundle package .        # {name}-{version}.kdeps
kdeps bundle build .          # Dockerfile and compose file
```
"""

TEMPLATES: dict[str, dict[str, str]] = {
    "api-service": {
        "workflow.yaml": WORKFLOW,
        "resources/llm.yaml": LLM,
        "resources/response.yaml": RESPONSE,
        "README.md": README,
    },
}


def _template(ctx: click.Context, param: click.Parameter, value: str) -> str:
    name = value.strip().lower()
    if name in TEMPLATES:
        return name
    available = ", ".join(TEMPLATES)
    if name in UNSUPPORTED_TEMPLATES:
        raise click.BadParameter(
            f"template '{value}' needs {UNSUPPORTED_TEMPLATES[name]}, which this implementation does "
            f"not support. Available templates: {available}")
    close = difflib.get_close_matches(name, [*TEMPLATES, *UNSUPPORTED_TEMPLATES], n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise click.BadParameter(f"unknown template '{value}'{hint}. Available templates: {available}")


def _backend(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from kdeps.spec.backends import BACKENDS

    name = value.strip().lower()
    if name in BACKENDS:
        return name
    close = difflib.get_close_matches(name, BACKENDS, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise click.BadParameter(f"unknown backend '{value}'{hint}. Available backends: {', '.join(BACKENDS)}")


# Editors with yaml-language-server (VS Code's YAML extension, Neovim, …) complete and check keys
# against the schema this comment names; `kdeps new` writes the schema files beside the agent.
SCHEMA_DIR = ".kdeps-schema"
_SCHEMA_HINT = "# yaml-language-server: $schema={path}\n"


def _with_schema_hint(rel: str, text: str) -> str:
    if not rel.endswith((".yaml", ".yml")):
        return text
    kind = "workflow" if rel in ("workflow.yaml", "workflow.yml") else "resource"
    up = "../" * rel.count("/")
    return _SCHEMA_HINT.format(path=f"{up}{SCHEMA_DIR}/{kind}.json") + text


def _write_schemas(root: Path) -> None:
    import json

    from kdeps.spec.schema import json_schema

    folder = root / SCHEMA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("workflow", "resource"):
        (folder / f"{kind}.json").write_text(json.dumps(json_schema(kind), indent=2) + "\n", encoding="utf-8")


@click.command(name="new")
@click.argument("name")
@click.option("--template", "-t", default=DEFAULT_TEMPLATE, show_default=True, callback=_template,
              help=f"Project template: {', '.join(TEMPLATES)}.")
@click.option("--force", is_flag=True, help="Write into NAME even if it exists (its files are overwritten).")
@click.option("--backend", default="gguf", show_default=True, callback=_backend,
              help="LLM backend of the scaffold's chat resource (gguf runs the embedded model).")
@click.option("--model", default=None, help="Model name (default: the backend's usual small model).")
def command(name: str, template: str, force: bool, backend: str, model: str | None) -> None:
    """Create the folder NAME with a workflow, an LLM resource and a response resource."""
    root = Path(name)
    if root.exists() and not root.is_dir():
        raise click.ClickException(f"{root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise click.ClickException(f"{root} already exists and is not empty (use --force to overwrite)")
    model = model or {"gguf": "smollm2:135m", "ollama": "llama3.2:1b"}.get(backend, "gpt-4o-mini")
    values = {"name": root.name, "description": "A kdeps agent", "version": "1.0.0",
              "port": DEFAULT_PORT, "backend": backend, "model": model}
    for rel, text in TEMPLATES[template].items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_with_schema_hint(rel, text.format(**values)), encoding="utf-8")
    _write_schemas(root)
    click.echo(f"Created {root}/ from the {template} template — try:\n"
               f"  kdeps run {root} --once --input q='What is AI?'\n  kdeps run {root}")
