"""`kdeps run --dev` reloads when a Jinja2 template (`*.yaml.j2`) changes, as it does for YAML."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from tests.e2e.server_utils import running

WORKFLOW = """\
apiVersion: kdeps.io/v1
kind: Workflow
metadata:
  name: j2-reload
  version: "1.0.0"
  targetActionId: response
settings:
  apiServer:
    routes:
      - path: /api/v1/v
        methods: [GET]
"""
RESOURCE = """\
actionId: response
name: Response
apiResponse:
  response:
    v: {% if true %}VALUE{% endif %}
"""


async def test_dev_mode_reloads_on_j2_change(tmp_path: Path) -> None:
    agent = tmp_path / "agent"
    (agent / "resources").mkdir(parents=True)
    (agent / "workflow.yaml").write_text(WORKFLOW)
    template = agent / "resources" / "response.yaml.j2"
    template.write_text(RESOURCE.replace("VALUE", "first"))
    with running(agent, "--dev", env={"KDEPS_API_AUTH_TOKEN": ""}) as server:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "/api/v1/v") as r:
                assert "first" in await r.text()
            template.write_text(RESOURCE.replace("VALUE", "second"))
            seen = ""
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and "second" not in seen:
                await asyncio.sleep(0.3)
                try:
                    async with http.get(server.url + "/api/v1/v") as r:
                        seen = await r.text()
                except aiohttp.ClientError:
                    pass
            assert "second" in seen
