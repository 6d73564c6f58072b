"""KDeps' response envelope, built here and nowhere else:

    {"success": true,  "data": ..., "meta": {...}}
    {"success": false, "error": {"code", "message", ...},
     "meta": {"requestID", "timestamp", "path", "method"}}
"""

from __future__ import annotations

import time
from typing import Any


def success(data: Any, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"success": True, "data": data}
    if meta:
        body["meta"] = meta
    return body


def failure(message: str, code: str, meta: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "error": {"code": code, "message": message, **fields}}
    if meta:
        body["meta"] = meta
    return body


def request_meta(request_id: str, path: str, method: str) -> dict[str, Any]:
    """The `meta` of an error answer: which request it was, and when."""
    return {"requestID": request_id, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "path": path, "method": method}
