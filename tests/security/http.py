"""A tiny synchronous HTTP client for the security tests (status, lower-cased headers, body)."""

from __future__ import annotations

import http.client
import json
from typing import Any


def call(url: str, method: str = "GET", path: str = "/", *, headers: dict[str, str] | None = None,
         body: Any = None, timeout: float = 10) -> tuple[int, dict[str, str], Any]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    data = None
    send_headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        send_headers.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=send_headers)
        response = conn.getresponse()
        raw = response.read()
        got = {k.lower(): v for k, v in response.getheaders()}
        if "set-cookie" in got:
            got["set-cookie"] = "\n".join(v for k, v in response.getheaders() if k.lower() == "set-cookie")
    finally:
        conn.close()
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode("utf-8", "replace")
    return response.status, got, parsed
