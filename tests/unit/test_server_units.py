"""The server's small units in-process: route matching, CORS answers and the client address behind
trusted proxies. (The end-to-end behaviour through `kdeps run` is in tests/e2e/.)"""

from __future__ import annotations

import pytest

from kdeps.errors import KdepsError
from kdeps.server.config import CorsSettings, RouteSpec
from kdeps.server.cors import Cors
from kdeps.server.incoming import client_ip, parse_networks
from kdeps.server.routing import Router

ROUTER = Router([
    RouteSpec("/api/v1/items/:id", ["GET", "DELETE"]),
    RouteSpec("/api/v1/items", ["POST"]),
    RouteSpec("/files/*", ["GET"]),
    RouteSpec("/api/v1/items/special", ["GET"]),  # declared after the :id route: never reached
])


@pytest.mark.parametrize(("path", "method", "route", "params"), [
    ("/api/v1/items/42", "GET", "/api/v1/items/:id", {"id": "42"}),
    ("/api/v1/items/42/", "DELETE", "/api/v1/items/:id", {"id": "42"}),  # trailing slash
    ("api/v1/items", "POST", "/api/v1/items", {}),
    ("/files/a/b/c.txt", "GET", "/files/*", {}),
    ("/api/v1/items/special", "GET", "/api/v1/items/:id", {"id": "special"}),  # declaration order wins
    ("/api/v1/items/42", "HEAD", "/api/v1/items/:id", {"id": "42"}),  # GET routes answer HEAD
])
def test_routes_match_with_params(path: str, method: str, route: str, params: dict[str, str]) -> None:
    match = ROUTER.match(path, method)
    assert match is not None and match.route is not None
    assert (match.route.path, match.params) == (route, params)


def test_wrong_method_reports_allowed_and_unknown_path_is_none() -> None:
    match = ROUTER.match("/api/v1/items", "GET")
    assert match is not None and match.route is None and match.allowed == frozenset({"POST"})
    assert ROUTER.match("/nope", "GET") is None
    assert ROUTER.match("/api/v1/items/1/2", "GET") is None  # a :param is one segment
    assert ROUTER.path_methods("/api/v1/items/7") == frozenset({"GET", "HEAD", "DELETE"})


def cors(**settings: object) -> Cors:
    return Cors(CorsSettings(enabled=True, **settings))  # type: ignore[arg-type]  # test shorthand


def test_named_origin_gets_credentials_and_vary() -> None:
    c = cors(allow_origins=["https://app.example/"], allow_headers=["X-Token"])
    headers = c.response_headers({"origin": "https://app.example"})
    assert headers == {"access-control-allow-origin": "https://app.example", "vary": "Origin",
                       "access-control-allow-credentials": "true"}
    assert c.response_headers({"origin": "https://evil.example"}) == {}
    assert c.response_headers({}) == {}


def test_star_is_literal_and_never_with_credentials() -> None:
    c = cors(allow_origins=["*"], allow_credentials=True)
    assert c.response_headers({"origin": "https://any.example"}) == {"access-control-allow-origin": "*"}


def test_preflight_checks_origin_method_and_headers() -> None:
    c = cors(allow_origins=["https://app.example"], allow_headers=["X-Token"], max_age=600)
    base = {"origin": "https://app.example", "access-control-request-method": "POST"}
    assert c.is_preflight("OPTIONS", base)
    status, headers, reason = c.preflight({**base, "access-control-request-headers": "x-token, content-type"},
                                          frozenset({"POST", "HEAD"}))
    assert status == 204 and reason == ""
    assert headers["access-control-allow-methods"] == "POST"
    assert headers["access-control-max-age"] == "600"
    assert c.preflight({**base, "access-control-request-method": "DELETE"}, frozenset({"POST"}))[0] == 403
    refused = c.preflight({**base, "access-control-request-headers": "x-other"}, frozenset({"POST"}))
    assert refused[0] == 403 and "x-other" in refused[2]
    assert c.preflight({**base, "origin": "https://evil.example"}, frozenset({"POST"}))[0] == 403
    disabled = Cors(CorsSettings(enabled=False, allow_origins=["*"]))
    assert not disabled.is_preflight("OPTIONS", base) and disabled.response_headers(base) == {}


def test_client_ip_believes_only_trusted_proxies() -> None:
    trusted = parse_networks(["10.0.0.0/8", "192.168.1.5"])
    assert client_ip("203.0.113.9", "1.2.3.4", trusted) == "203.0.113.9"  # untrusted peer: its own address
    assert client_ip("10.1.2.3", "1.2.3.4", trusted) == "1.2.3.4"
    # read right to left, skipping trusted hops; a client-written left part cannot spoof
    assert client_ip("10.1.2.3", "6.6.6.6, 1.2.3.4, 192.168.1.5", trusted) == "1.2.3.4"
    assert client_ip("10.1.2.3", None, trusted) == "10.1.2.3"
    assert client_ip("10.1.2.3", "1.2.3.4", []) == "10.1.2.3"  # no trusted proxies configured


def test_bad_trusted_proxy_entry_is_a_startup_error() -> None:
    with pytest.raises(KdepsError, match="not an IP address or CIDR block"):
        parse_networks(["10.0.0.0/33"])
