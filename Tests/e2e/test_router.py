"""router-http (nginx/) against fake FastCGI backends: statics, routing, FastCGI params, headers,
limits and nginx's own JSON errors. Needs neither the Swift programs nor a database."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import socket
import ssl
import time
from dataclasses import dataclass
from email.message import Message

import pytest

APP_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}


@dataclass
class Resp:
    status: int
    headers: Message
    body: bytes

    def one(self, name: str) -> str | None:
        values = self.headers.get_all(name) or []
        assert len(values) <= 1, f"header {name} sent {len(values)} times: {values}"
        return values[0] if values else None

    def json(self):
        return json.loads(self.body)


def fetch(stack, path: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None,
          tls: bool = False, timeout: float = 10) -> Resp:
    if tls:
        ctx = ssl.create_default_context(cafile=str(stack.tls_cert))
        conn = http.client.HTTPSConnection("127.0.0.1", stack.tls_port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Resp(r.status, r.msg, r.read())
    finally:
        conn.close()


def assert_nginx_json_error(r: Resp, status: int, code: str) -> dict:
    assert r.status == status
    assert r.one("Content-Type") == "application/json"
    assert r.one("Access-Control-Allow-Origin") == "*"
    assert r.one("X-Content-Type-Options") == "nosniff"
    assert re.fullmatch(r"[0-9a-f]{32}", r.one("X-Request-Id") or "")
    doc = r.json()
    assert doc["status"] == status and doc["code"] == code and isinstance(doc["error"], str) and doc["error"]
    return doc


# ---- statics -------------------------------------------------------------------------------

def test_workspace_index_has_security_headers(router):
    r = fetch(router, "/")
    assert r.status == 200
    assert r.one("Content-Type").startswith("text/html")
    assert b"Tessera" in r.body
    for name, value in APP_HEADERS.items():
        assert r.one(name) == value
    assert "frame-ancestors 'none'" in r.one("Content-Security-Policy")
    assert r.one("Strict-Transport-Security") is None, "HSTS must only be sent over TLS"
    assert r.one("Server") == "nginx", "server_tokens off: no version"
    assert r.one("Cache-Control") == "no-cache"


def test_workspace_spa_fallback(router):
    r = fetch(router, "/maps/1234/edit")
    assert r.status == 200 and b"Tessera workspace" in r.body


def test_accounts_app(router):
    r = fetch(router, "/acc/")
    assert r.status == 200 and b"Tessera accounts" in r.body
    assert r.one("X-Frame-Options") == "DENY"
    r = fetch(router, "/acc/login")
    assert r.status == 200 and b"Tessera accounts" in r.body
    r = fetch(router, "/acc")
    assert r.status == 301 and r.one("Location") == "/acc/"


def test_static_error_pages_carry_security_headers(router):
    r = fetch(router, "/.git/config")
    assert r.status == 404
    for name, value in APP_HEADERS.items():
        assert r.one(name) == value


def test_tls_server_sends_hsts_and_speaks_http2(router):
    r = fetch(router, "/", tls=True)
    assert r.status == 200
    assert r.one("Strict-Transport-Security").startswith("max-age=")
    ctx = ssl.create_default_context(cafile=str(router.tls_cert))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", router.tls_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == "h2"
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_gzip_for_json_and_tiles_with_vary(router):
    """Lean tiles (issue 13): vector tiles are compressed like JSON, `Vary: Accept-Encoding` says so, and a
    client that does not accept gzip gets the identity body."""
    tile = "/api/v3/maps/c/table/1/2/3?content_type=application/vnd.mapbox-vector-tile&pad=" + "x" * 2000
    r = fetch(router, tile, headers={"Accept-Encoding": "gzip"})
    assert r.status == 200 and r.one("Content-Encoding") == "gzip"
    assert "accept-encoding" in (r.one("Vary") or "").lower()
    assert json.loads(gzip.decompress(r.body))["backend"] == "maps-api"
    plain = fetch(router, tile)
    assert plain.status == 200 and plain.one("Content-Encoding") is None and json.loads(plain.body)["backend"] == "maps-api"
    r = fetch(router, "/api/v3/sql/c/query?pad=" + "x" * 2000, headers={"Accept-Encoding": "gzip"})
    assert r.one("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(r.body))["backend"] == "maps-api"


# ---- routing and FastCGI params --------------------------------------------------------------

@pytest.mark.parametrize("path,backend", [
    ("/api/v3/sql/carto_dw/query?q=select%201", "maps-api"),
    ("/api/v3/sql/carto_dw/model/formula", "maps-api"),
    ("/api/v3/maps/carto_dw/table?name=t", "maps-api"),
    ("/api/v3/stats/carto_dw/t/col", "maps-api"),
    ("/api/v3/imports", "import-api"),
    ("/api/v3/imports/123", "import-api"),
    ("/api/v3/auth/login", "workspace-api"),
    ("/api/v3/connections", "workspace-api"),
    ("/api/v3/tokens", "workspace-api"),
    ("/api/v4/anything", "workspace-api"),
    ("/api/v3/maps/public/abcDEF123_-", "workspace-api"),  # fetchMap's map metadata, not tiles
    ("/api/v3/maps/publicity/table", "maps-api"),
    ("/api/v3/workspace/maps", "workspace-api"),
])
def test_api_routes_to_the_right_socket(router, path, backend):
    r = fetch(router, path)
    assert r.status == 200
    assert r.json()["backend"] == backend


def test_fastcgi_params(router):
    r = fetch(router, "/api/v3/sql/carto_dw/query?q=select%201&access_token=abc",
              headers={"Host": "maps.example.test", "Proxy": "http://evil.example:3128"})
    p = r.json()["params"]
    assert p["REQUEST_METHOD"] == "GET"
    assert p["SCRIPT_NAME"] == "/api/v3/sql/carto_dw/query"
    assert p["DOCUMENT_URI"] == "/api/v3/sql/carto_dw/query"
    assert p["PATH_INFO"] == ""
    assert p["REQUEST_URI"] == "/api/v3/sql/carto_dw/query?q=select%201&access_token=abc"
    assert p["QUERY_STRING"] == "q=select%201&access_token=abc"
    assert p["REMOTE_ADDR"] == "127.0.0.1"
    assert p["SERVER_NAME"] == "maps.example.test"
    assert p["HTTP_HOST"] == "maps.example.test"
    assert p["SERVER_PORT"] == str(router.http_port)
    assert p["REQUEST_SCHEME"] == "http" and "HTTPS" not in p
    # httpoxy: the Proxy request header never becomes HTTP_PROXY (nginx drops the empty param).
    assert p.get("HTTP_PROXY", "") == ""
    assert not any("evil.example" in v for v in p.values())
    assert re.fullmatch(r"[0-9a-f]{32}", p["REQUEST_ID"])
    assert p["HTTP_X_REQUEST_ID"] == p["REQUEST_ID"] == r.one("X-Request-Id")


def test_fastcgi_params_over_tls(router):
    p = fetch(router, "/api/v3/connections", tls=True).json()["params"]
    assert p["HTTPS"] == "on" and p["REQUEST_SCHEME"] == "https"
    assert p["SERVER_PORT"] == str(router.tls_port)


def test_post_body_reaches_backend(router):
    body = json.dumps({"q": "select 1"}).encode()
    r = fetch(router, "/api/v3/sql/carto_dw/query", "POST", {"Content-Type": "application/json"}, body)
    doc = r.json()
    assert doc["params"]["CONTENT_TYPE"] == "application/json"
    assert doc["params"]["CONTENT_LENGTH"] == str(len(body))
    assert doc["stdin_bytes"] == len(body)


def test_wellformed_incoming_request_id_is_kept_and_junk_replaced(router):
    r = fetch(router, "/api/v3/connections", headers={"X-Request-Id": "outer-proxy-1234abcd"})
    assert r.json()["params"]["REQUEST_ID"] == "outer-proxy-1234abcd"
    r = fetch(router, "/api/v3/connections", headers={"X-Request-Id": "bad id\";"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.json()["params"]["REQUEST_ID"])


def test_api_headers_are_not_duplicated(router):
    # The backend sends its own nosniff/Referrer-Policy: nginx must hide them and send one copy.
    r = fetch(router, "/api/v3/connections?header=X-Content-Type-Options:nosniff"
                      "&header=Referrer-Policy:no-referrer&header=X-Powered-By:swift")
    assert r.one("X-Content-Type-Options") == "nosniff"
    assert r.one("Referrer-Policy") == "strict-origin-when-cross-origin"
    assert r.one("X-Request-Id")  # the backend's echo, exactly once
    assert r.one("Access-Control-Allow-Origin") == "*"
    assert r.one("X-Powered-By") is None
    assert r.one("X-Frame-Options") is None and r.one("Content-Security-Policy") is None


def test_backend_errors_pass_through_unchanged(router):
    r = fetch(router, "/api/v3/sql/carto_dw/query?status=404")
    assert r.status == 404
    assert r.json()["backend"] == "maps-api", "nginx must not replace the backend's own error body"


# ---- nginx's own errors are JSON -------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
def test_no_backend_is_json_502(router, method):
    r = fetch(router, "/api/v3/lds/geocoding/geocode.png?address=Zaragoza", method,
              body=b"{}" if method == "POST" else None)
    if method == "HEAD":
        assert r.status == 502 and r.one("Content-Type") == "application/json" and r.body == b""
    else:
        assert_nginx_json_error(r, 502, "bad_gateway")
        assert r.one("X-Frame-Options") is None


def test_bare_api_is_json_404(router):
    assert_nginx_json_error(fetch(router, "/api"), 404, "not_found")


def test_body_over_10m_is_json_413(router):
    conn = http.client.HTTPConnection("127.0.0.1", router.http_port, timeout=10)
    try:
        conn.putrequest("POST", "/api/v3/sql/carto_dw/query")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(10 * 1024 * 1024 + 1))
        conn.endheaders()
        r = conn.getresponse()
        resp = Resp(r.status, r.msg, r.read())
    finally:
        conn.close()
    assert_nginx_json_error(resp, 413, "payload_too_large")


def test_imports_stream_bodies_over_10m(router):
    size = 12 * 1024 * 1024
    r = fetch(router, "/api/v3/imports", "POST", {"Content-Type": "application/octet-stream"},
              b"\0" * size, timeout=60)
    assert r.status == 200
    assert r.json()["stdin_bytes"] == size


def test_huge_headers_are_rejected(router):
    r = fetch(router, "/api/v3/connections", headers={"X-Big": "a" * 70_000})
    assert r.status in (400, 431)


def test_login_is_rate_limited_per_ip_for_posts_only(router):
    for _ in range(30):  # preflights never use up the budget
        assert fetch(router, "/api/v3/auth/login", "OPTIONS").status == 200
    statuses = []
    for _ in range(30):
        r = fetch(router, "/api/v3/auth/login", "POST", {"Content-Type": "application/json"}, b"{}")
        statuses.append(r.status)
        if r.status == 429:
            assert_nginx_json_error(r, 429, "too_many_requests")
            assert r.one("Retry-After") == "60"
    assert statuses.count(200) >= 20, statuses  # burst 20 (+1 for the rate itself)
    assert statuses.count(429) >= 5, statuses
    assert set(statuses) <= {200, 429}


def test_access_log_has_no_query_strings(router):
    secret = "tok" + "en" + "SECRET0123456789"
    r = fetch(router, f"/api/v3/sql/carto_dw/query?q=select%201&access_token={secret}")
    rid = r.one("X-Request-Id")
    path = router.logs_dir / "nginx" / "access.log"
    # nginx writes the line when it finalizes the request, which may be a moment after the client
    # has read the whole response (through the Varnish hop more so).
    deadline = time.monotonic() + 5
    while f"rid={rid}" not in (log := path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"rid={rid}" in log
    assert secret not in log

