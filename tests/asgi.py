"""Drive an ASGI app in-process, one request at a time, without a socket or a server."""

from __future__ import annotations

from typing import Any


async def call(app: Any, path: str, method: str = "GET", *, headers: dict[str, str] | None = None,
               client: str = "127.0.0.1", body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One request straight through the ASGI app: (status, headers, body). Header names are lower-case;
    of a repeated header only the last value is kept."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw = [(k.lower().encode(), v.encode()) for k, v in {"host": "127.0.0.1:3000", **(headers or {})}.items()]
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": raw, "client": (client, 5), "server": ("127.0.0.1", 3000), "scheme": "http",
             "http_version": "1.1", "root_path": ""}
    await app(scope, receive, send)
    start = sent[0]
    out = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], out, body_out
