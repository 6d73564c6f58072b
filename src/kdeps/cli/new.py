"""`kdeps new`: a runnable agent scaffold."""

from __future__ import annotations

from pathlib import Path

import click

WORKFLOW = """\
apiVersion: kdeps.io/v1
kind: Workflow

metadata:
  name: {name}
  description: A new kdeps agent
  version: "0.1.0"
  targetActionId: responseResource

settings:
  apiServerMode: true
  apiServer:
    hostIp: "127.0.0.1"
    portNum: 3000
    routes:
      - path: /api/v1/chat
        methods: [POST]
"""

LLM = """\
apiVersion: kdeps.io/v1
kind: Resource

metadata:
  actionId: llmResource
  name: LLM Chat

run:
  preflightCheck:
    validations:
      - get('q') != ''
    error:
      code: 400
      message: Query parameter 'q' is required
  chat:
    backend: {backend}
    model: {model}
    prompt: "{{{{ get('q') }}}}"
    scenario:
      - role: system
        prompt: You are a helpful assistant. Answer in one sentence.
    maxTokens: 128
    timeoutDuration: 60s
"""

RESPONSE = """\
apiVersion: kdeps.io/v1
kind: Resource

metadata:
  actionId: responseResource
  requires:
    - llmResource

run:
  apiResponse:
    success: true
    response:
      answer: get('llmResource')
      query: get('q')
"""


@click.command(name="new")
@click.argument("name")
@click.option("--backend", default="gguf", show_default=True,
              help="LLM backend of the scaffold's chat resource (gguf runs the embedded model).")
@click.option("--model", default=None, help="Model name (default: the backend's usual small model).")
def command(name: str, backend: str, model: str | None) -> None:
    """Create the folder NAME with a workflow, an LLM resource and a response resource."""
    root = Path(name)
    if root.exists() and any(root.iterdir()):
        raise click.ClickException(f"{root} already exists and is not empty")
    model = model or {"gguf": "smollm2:135m", "ollama": "llama3.2:1b"}.get(backend, "gpt-4o-mini")
    (root / "resources").mkdir(parents=True, exist_ok=True)
    (root / "workflow.yaml").write_text(WORKFLOW.format(name=root.name))
    (root / "resources" / "llm.yaml").write_text(LLM.format(backend=backend, model=model))
    (root / "resources" / "response.yaml").write_text(RESPONSE)
    click.echo(f"Created {root}/ — try:\n  kdeps run {root} --once --input q='What is AI?'\n"
               f"  kdeps run {root}")
