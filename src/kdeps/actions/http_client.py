"""`httpClient`: an outbound HTTP call with auth, retries, a timeout, a response cache, TLS and proxy
options. The output is KDeps' response object (`statusCode`, `status`, `headers`, `body` - the raw
text - and `data` - the parsed JSON or null); when the answer is a JSON object its own keys are
readable on the output too (`get('fetch').name`), the response keys winning on a clash.

Request data spliced into `url` is percent-encoded for its place (kdeps.actions.splice): it cannot
change scheme, host, port or the author's path. Redirects are followed by hand so that credential
headers never reach another origin. Errors name the upstream only in the (redacted) log.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import math
import ssl
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
from yarl import URL

from kdeps.actions import splice
from kdeps.actions.base import ActionContext
from kdeps.errors import ResourceError
from kdeps.llm.retry import RetryPolicy, retry_after

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRY_ON = frozenset({408, 429, 500, 502, 503, 504})
BODY_CAP = 32 * 1024 * 1024
MAX_REDIRECTS = 10
CACHE_ENTRIES = 1024
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DNS_ERROR: Any = getattr(aiohttp, "ClientConnectorDNSError", ())  # aiohttp >= 3.10

_clock = time.monotonic  # tests replace it to move the cache's time
_sleep = asyncio.sleep  # tests replace it to see the waits between attempts
_cache: OrderedDict[str, tuple[float, Any, dict[str, Any]]] = OrderedDict()
_ssl_contexts: dict[tuple[bool, str | None, str | None, str | None], ssl.SSLContext] = {}


async def run(ctx: ActionContext, config: Any) -> Any:
    from kdeps.llm.transport import get_session

    method = str(ctx.render(config.method or "GET", bare=False)).upper()
    url = _url(ctx, config.url)
    headers = {str(k): str(v) for k, v in (ctx.render(config.headers or {}) or {}).items()}
    credentials = set(CREDENTIAL_HEADERS)
    _apply_auth(ctx, config.auth, headers, credentials)
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise ResourceError(ctx.resource_id, f"header {name} holds a line break", 400)
    params = {str(k): str(v) for k, v in (ctx.render(getattr(config, "params", None) or {}) or {}).items()}
    data = ctx.render(config.data) if config.data is not None else None
    body: bytes | None = None
    if data is not None:
        if isinstance(data, str | bytes):
            body = data.encode() if isinstance(data, str) else data
        else:
            body = json.dumps(data).encode()
            headers.setdefault("Content-Type", "application/json")

    cache_key = _cache_key(ctx, config.cache, method, url, params, body, headers, credentials)
    if cache_key is not None:
        hit = _cache_get(cache_key)
        if hit is not None:
            output, meta = hit
            ctx.record(**meta, cached=True)
            return output

    request = _Request(method, url, headers, params, body, credentials,
                       follow=True if config.follow_redirects is None else bool(config.follow_redirects),
                       ssl=_ssl_context(ctx, getattr(config, "tls", None)),
                       proxy=_proxy(ctx, getattr(config, "proxy", None)))
    timeout = float(config.timeout_duration or DEFAULT_TIMEOUT)
    policy, retry_on = _retry_policy(config.retry)
    deadline = ctx.deadline()
    loop = asyncio.get_running_loop()
    session = get_session()
    attempt = 0
    while True:
        attempt += 1
        failure, answer = await _attempt(ctx, session, request, timeout)
        left = math.inf if deadline is None else deadline - loop.time()
        if answer is not None:
            status, reason, resp_headers, raw = answer
            wait = policy.next_wait(attempt, retry_after(resp_headers), left) if status in retry_on else None
            if wait is None:
                output, meta = _shape(status, reason, resp_headers, raw)
                ctx.record(**meta)
                if cache_key is not None and status < 500:
                    _cache_put(cache_key, output, meta, float(config.cache.ttl))
                return output
            message = f"{method} upstream answered HTTP {status}"
        else:
            assert failure is not None
            wait = policy.next_wait(attempt, None, left)
            if wait is None:
                raise failure
            message = failure.message
        ctx.log.warning("%s; retry %d/%d in %.2fs", message, attempt, policy.max_attempts - 1, wait)
        await _sleep(wait)


def _retry_policy(retry: Any) -> tuple[RetryPolicy, frozenset[int]]:
    """The `retry:` block as the shared policy (one attempt when absent) and the statuses it retries."""
    if retry is None:
        return RetryPolicy(max_attempts=1), frozenset()
    policy = RetryPolicy(max_attempts=max(1, int(getattr(retry, "max_attempts", None) or 1)),
                         initial_delay=float(getattr(retry, "backoff", None) or 1.0),
                         max_delay=float(getattr(retry, "max_backoff", None) or 30.0))
    return policy, frozenset(getattr(retry, "retry_on", None) or DEFAULT_RETRY_ON)


class _Request:
    __slots__ = ("body", "credentials", "follow", "headers", "method", "params", "proxy", "ssl", "url")

    def __init__(self, method: str, url: str, headers: dict[str, str], params: dict[str, str],
                 body: bytes | None, credentials: set[str], *, follow: bool,
                 ssl: ssl.SSLContext | None, proxy: tuple[str, dict[str, str]] | None) -> None:
        self.method, self.url, self.headers, self.params, self.body = method, url, headers, params, body
        self.credentials, self.follow, self.ssl, self.proxy = credentials, follow, ssl, proxy


async def _attempt(ctx: ActionContext, session: aiohttp.ClientSession, req: _Request, timeout: float
                   ) -> tuple[ResourceError | None, tuple[int, str, dict[str, str], bytes] | None]:
    """One attempt, redirects included: (error, None) or (None, (status, reason, headers, body))."""
    from kdeps.llm.transport import error_reason, safe_url

    method, headers, body = req.method, dict(req.headers), req.body
    target = URL(req.url, encoded=True)
    if req.params:
        target = target.update_query(req.params)
    proxy_url, proxy_headers = req.proxy if req.proxy else (None, None)
    try:
        async with asyncio.timeout(timeout):
            for _hop in range(MAX_REDIRECTS + 1):
                # Through a proxy, plain-HTTP requests carry the proxy's credentials themselves (HTTPS
                # ones send them on CONNECT); they are the proxy's, so redirects keep them.
                sent = {**headers, **proxy_headers} if proxy_headers and target.scheme == "http" else headers
                async with session.request(method, target, headers=sent, data=body, allow_redirects=False,
                                           ssl=req.ssl if req.ssl is not None else True,
                                           proxy=proxy_url, proxy_headers=proxy_headers) as resp:
                    location = resp.headers.get("Location")
                    if req.follow and resp.status in _REDIRECTS and location:
                        nxt = target.join(URL(location))
                        if nxt.scheme not in ("http", "https"):
                            return ResourceError(ctx.resource_id, "upstream redirected to a non-HTTP URL",
                                                 502), None
                        if _origin(nxt) != _origin(target):
                            headers = {k: v for k, v in headers.items() if k.lower() not in req.credentials}
                        if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                            method, body = ("HEAD" if method == "HEAD" else "GET"), None
                            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
                        target = nxt
                        continue
                    raw = await resp.content.read(BODY_CAP + 1)
                    if len(raw) > BODY_CAP:
                        return ResourceError(ctx.resource_id, f"upstream response is over {BODY_CAP} bytes",
                                             502), None
                    return None, (resp.status, resp.reason or "", dict(resp.headers), raw)
            return ResourceError(ctx.resource_id, f"upstream redirected more than {MAX_REDIRECTS} times",
                                 502), None
    except TimeoutError:
        ctx.log.warning("httpClient %s %s: no answer within %gs", method, safe_url(str(target)), timeout)
        return ResourceError(ctx.resource_id, f"{method} upstream timed out after {timeout:g}s", 504), None
    except (aiohttp.ClientError, ValueError, OSError) as err:
        ctx.log.warning("httpClient %s %s failed: %s", method, safe_url(str(target)), error_reason(err))
        return ResourceError(ctx.resource_id, f"{method} upstream unreachable ({_kind(err)})", 502), None


def _kind(err: BaseException) -> str:
    """What went wrong, in words that name no host, port or URL (clients read this)."""
    if isinstance(err, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError | ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(err, _DNS_ERROR):
        return "host name not resolved"
    if isinstance(err, aiohttp.ClientConnectorError):
        if isinstance(err.os_error, ConnectionRefusedError):
            return "connection refused"
        return "cannot connect"
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return "connection closed without an answer"
    if isinstance(err, aiohttp.ClientPayloadError):
        return "response cut off"
    if isinstance(err, ValueError):
        return "invalid request"
    return "connection failed"


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme, (url.host or "").lower(), url.port)


def _url(ctx: ActionContext, template: Any) -> str:
    text = str(template)
    try:
        url = splice.url(text, lambda program: ctx.evaluate(program.source))
        splice.check_url(url)
    except splice.UrlError as err:
        raise ResourceError(ctx.resource_id, f"url: {err.message}", 400 if "{{" in text else 500) from None
    return url


def _apply_auth(ctx: ActionContext, auth: Any, headers: dict[str, str], credentials: set[str]) -> None:
    if auth is None:
        return
    kind = (auth.type or "bearer").lower()
    if kind in ("bearer", "oauth2"):
        headers["Authorization"] = f"Bearer {ctx.render(auth.token, bare=True)}"
    elif kind == "basic":
        pair = f"{ctx.render(auth.username)}:{ctx.render(auth.password)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    elif kind == "api_key":
        name = str(ctx.render(auth.key) or "X-API-Key")
        headers[name] = str(ctx.render(auth.value))
        credentials.add(name.lower())


def _shape(status: int, reason: str, headers: dict[str, str], raw: bytes) -> tuple[Any, dict[str, Any]]:
    """KDeps' response object, and the metadata the `http.*` accessors read."""
    text = raw.decode("utf-8", "replace")
    data: Any = None
    content_type = headers.get("Content-Type", "")
    if "json" in content_type or text.lstrip()[:1] in ("{", "["):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    envelope = {"statusCode": status, "status": f"{status} {reason}".strip(), "headers": headers,
                "body": text, "data": data}
    output = {**data, **envelope} if isinstance(data, dict) else envelope
    meta = {"body": data if data is not None else text, "headers": headers, "statusCode": status}
    return output, meta


# -- cache ---------------------------------------------------------------------------------------
def _cache_key(ctx: ActionContext, cache: Any, method: str, url: str, params: dict[str, str],
               body: bytes | None, headers: dict[str, str], credentials: set[str]) -> str | None:
    if cache is None or not getattr(cache, "enabled", True):
        return None
    if cache.key:
        return "key:" + str(ctx.render(cache.key, bare=False))
    digest = hashlib.sha256()
    for piece in (method, url, json.dumps(sorted(params.items())), body or b"",
                  json.dumps(sorted((k.lower(), v) for k, v in headers.items() if k.lower() in credentials))):
        digest.update(piece if isinstance(piece, bytes) else piece.encode())
        digest.update(b"\0")
    return "req:" + digest.hexdigest()


def _cache_get(key: str) -> tuple[Any, dict[str, Any]] | None:
    entry = _cache.get(key)
    if entry is None:
        return None
    expires, output, meta = entry
    if _clock() >= expires:
        _cache.pop(key, None)
        return None
    return copy.deepcopy(output), meta


def _cache_put(key: str, output: Any, meta: dict[str, Any], ttl: float) -> None:
    if ttl <= 0:
        return
    _cache[key] = (_clock() + ttl, copy.deepcopy(output), meta)
    _cache.move_to_end(key)
    while len(_cache) > CACHE_ENTRIES:
        _cache.popitem(last=False)


# -- TLS and proxy -------------------------------------------------------------------------------
def _ssl_context(ctx: ActionContext, tls: Any) -> ssl.SSLContext | None:
    if tls is None:
        return None

    def path(value: Any) -> str | None:
        if not value:
            return None
        return str((ctx.workflow_dir / str(ctx.render(value, bare=False))).resolve())

    key = (bool(tls.insecure_skip_verify), path(tls.cert_file), path(tls.key_file), path(tls.ca_file))
    context = _ssl_contexts.get(key)
    if context is not None:
        return context
    insecure, cert, private, ca = key
    try:
        context = ssl.create_default_context(cafile=None if insecure else ca)
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if cert:
            context.load_cert_chain(cert, private)
    except (OSError, ssl.SSLError) as err:
        raise ResourceError(ctx.resource_id, f"tls: cannot load the certificate files ({err})", 500) from None
    _ssl_contexts[key] = context
    return context


def _proxy(ctx: ActionContext, proxy: Any) -> tuple[str, dict[str, str]] | None:
    """The proxy URL without user info, and the Proxy-Authorization header its user info makes."""
    if not proxy:
        return None
    text = str(ctx.render(proxy, bare=False)).strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ResourceError(ctx.resource_id, "proxy must be an http:// URL with a host", 500)
    headers: dict[str, str] = {}
    if parts.username:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, parts.path, "", "")), headers
