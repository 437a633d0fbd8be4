"""http-cache: Varnish between nginx and maps-api (design.md §2; carto-v3-api.md §1.6; reliability.md A12,
A13, L8, F13). packaging/varnish/tessera.vcl holds the cache contract these tests pin down.

Two parts:
  * the contract itself, on the `router` stack: fake FastCGI backends whose response headers the
    request chooses (`header=K:V`), so Surrogate-Control and the surrogate-key headers can be sent
    before the Swift programs send them;
  * the real programs on the `stack` fixture. Tests that need headers maps-api does not send yet
    (Surrogate-Control, X-Source-Key) are strict xfails: they start passing, and must then lose
    their mark, when it does.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import time
import urllib.parse
from dataclasses import dataclass
from email.message import Message

import pytest

import helpers as h
from fake_fcgi import FakeFastCGI

SESSION_COOKIE = "__Host-tessera_session"
INTERNAL_HEADERS = ("Surrogate-Control", "Surrogate-Key", "X-Source-Key", "X-Connection-Key", "X-Credential-Key",
                    "xkey", "X-Varnish", "Via")
NEEDS_SURROGATE_CONTROL = ("maps-api does not send `Surrogate-Control: max-age=N` yet (only `Cache-Control: private`, "
                           "which Varnish must not store): see the header contract in packaging/varnish/tessera.vcl")


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

    def __repr__(self) -> str:
        return f"<Resp {self.status} {self.body[:300]!r}>"


def fetch(port: int, path: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None,
          timeout: float = 30) -> Resp:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Resp(r.status, r.msg, r.read())
    finally:
        conn.close()


def nginx(stack, path: str, method: str = "GET", *, token: str | None = None, headers: dict | None = None,
          body: bytes | None = None) -> Resp:
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    return fetch(stack.http_port, path, method, hdrs, body)


def invalidate(stack, method: str, headers: dict) -> tuple[int, dict]:
    status, _, body = stack.varnish_request(method, "/", headers)
    return status, json.loads(body)


def assert_json_error(r: Resp, status: int, code: str) -> dict:
    assert r.status == status, r
    assert (r.one("Content-Type") or "").startswith("application/json"), r.headers
    assert r.one("Access-Control-Allow-Origin") == "*"
    assert re.fullmatch(r"[0-9a-f]{32}", r.one("X-Request-Id") or ""), r.headers
    doc = r.json()
    assert doc["status"] == status and doc["code"] == code and isinstance(doc["error"], str) and doc["error"], doc
    return doc


def assert_no_internal_headers(r: Resp) -> None:
    for name in INTERNAL_HEADERS:
        assert r.one(name) is None, f"{name} leaked to the client: {r.one(name)}"


# ============================================================================================
# The contract, against fake backends (router stack)


def cached_path(tag: str, *, source: str = "src1", connection: str = "acc1:conn1", credential: str = "token:t1",
                max_age: int = 60, kind: str = "maps", extra: str = "") -> str:
    """A maps-api URL whose fake answer carries the full header contract (unique per `tag`)."""
    base = {"maps": f"/api/v3/maps/carto_dw/table/1/0/0",
            "sql": f"/api/v3/sql/carto_dw/query",
            "model": f"/api/v3/sql/carto_dw/model/formula",
            "stats": f"/api/v3/stats/carto_dw/t/col"}[kind]
    params = [("tag", tag),
              ("header", "Cache-Control:private, max-age=%d" % max_age),
              ("header", "Vary:Authorization, Origin"),
              ("header", "Surrogate-Control:max-age=%d" % max_age),
              ("header", f"X-Source-Key:{source}"),
              ("header", f"X-Connection-Key:{connection}"),
              ("header", f"X-Credential-Key:{credential}")]
    return base + "?" + urllib.parse.urlencode(params) + extra


def backend_hits(router, tag: str) -> int:
    return sum(1 for p in list(router.fakes["maps-api"].requests) if f"tag={tag}&" in p.get("QUERY_STRING", "") + "&")


def unique_tag() -> str:
    return "t" + os.urandom(6).hex()


@pytest.mark.parametrize("kind", ["maps", "sql", "model", "stats"])
def test_cacheable_get_is_stored_and_served_per_contract(router, kind):
    tag = unique_tag()
    path = cached_path(tag, kind=kind)
    first = nginx(router, path, token="tok-A")
    assert first.status == 200 and first.one("X-Cache") == "MISS", first.headers
    second = nginx(router, path, token="tok-A")
    assert second.status == 200 and second.one("X-Cache") == "HIT", second.headers
    assert second.body == first.body, "a hit is the stored response"
    assert backend_hits(router, tag) == 1
    assert int(second.one("Age")) >= 0
    # Browser-facing headers are the backend's; CORS survives the cache; the cache's own do not leak.
    assert second.one("Cache-Control") == "private, max-age=60"
    # Varnish merges Accept-Encoding into the backend's Vary when it gzips (nginx may add its own): tokens count.
    vary = {v.strip() for line in second.headers.get_all("Vary") for v in line.split(",")}
    assert {"Authorization", "Origin", "Accept-Encoding"} <= vary
    assert second.one("Access-Control-Allow-Origin") == "*"
    assert second.one("X-Content-Type-Options") == "nosniff"
    assert_no_internal_headers(first)
    assert_no_internal_headers(second)
    # Every answer carries its own request id, the stored one does not come back.
    assert re.fullmatch(r"[0-9a-f]{32}", second.one("X-Request-Id"))
    assert second.one("X-Request-Id") != first.one("X-Request-Id")
    # HEAD is answered from the same object.
    head = nginx(router, path, "HEAD", token="tok-A")
    assert head.status == 200 and head.one("X-Cache") == "HIT" and head.body == b""
    assert backend_hits(router, tag) == 1


def http_now_after_store() -> str:
    """`new Date().toUTCString()` as the client sends it (whole seconds), taken in the second after the
    object was stored: Varnish answers 304 when the date is not before the object and not in its future."""
    time.sleep(1.05 - time.time() % 1)
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())


def test_conditional_requests_get_the_full_answer(router):
    """fetchMap({autoRefresh}) sends If-Modified-Since: <now> and parses the answer as JSON: a stored object
    must come back whole (200 and its body), never as a bodiless 304."""
    path = cached_path(unique_tag())
    first = nginx(router, path, token="tok-A")
    assert first.status == 200 and first.body
    now = http_now_after_store()
    for conditional in [{"If-Modified-Since": now}, {"If-None-Match": "*"}]:
        again = nginx(router, path, token="tok-A", headers=conditional)
        assert again.status == 200 and again.one("X-Cache") == "HIT", again
        assert again.body == first.body


@pytest.mark.parametrize("credential", ["bearer", "access_token", "session"])
def test_each_credential_has_its_own_entries(router, credential):
    tag = unique_tag()
    path = cached_path(tag)

    def ask(secret: str) -> Resp:
        if credential == "bearer":
            return nginx(router, path, token=secret)
        if credential == "access_token":
            return nginx(router, path + "&access_token=" + secret)
        return nginx(router, path, headers={"Cookie": f"theme=dark; {SESSION_COOKIE}={secret}"})

    assert ask("secret-A").one("X-Cache") == "MISS"
    assert ask("secret-A").one("X-Cache") == "HIT"
    other = ask("secret-B")
    assert other.one("X-Cache") == "MISS", "another credential must never get the first one's entry"
    assert backend_hits(router, tag) == 2
    seen = [p for p in router.fakes["maps-api"].requests if f"tag={tag}&" in p.get("QUERY_STRING", "") + "&"]
    # The credential still reaches the backend, which authorises every miss.
    if credential == "bearer":
        assert [p.get("HTTP_AUTHORIZATION") for p in seen] == ["Bearer secret-A", "Bearer secret-B"]
    elif credential == "session":
        assert all(SESSION_COOKIE in p.get("HTTP_COOKIE", "") for p in seen)


def test_origin_and_referer_origin_are_part_of_the_key(router):
    """Referer-restricted tokens are checked against Origin, else the Referer's scheme://host."""
    tag = unique_tag()
    path = cached_path(tag)
    a = {"Origin": "https://a.example"}
    assert nginx(router, path, token="tok", headers=a).one("X-Cache") == "MISS"
    assert nginx(router, path, token="tok", headers=a).one("X-Cache") == "HIT"
    assert nginx(router, path, token="tok", headers={"Origin": "https://evil.example"}).one("X-Cache") == "MISS"
    ref = {"Referer": "https://a.example/map/1"}
    assert nginx(router, path, token="tok", headers=ref).one("X-Cache") == "MISS"
    assert nginx(router, path, token="tok", headers={"Referer": "https://a.example/other?x=1"}).one("X-Cache") == "HIT"
    assert nginx(router, path, token="tok", headers={"Referer": "https://evil.example/map/1"}).one("X-Cache") == "MISS"


@pytest.mark.parametrize("headers", [{}, {"Cookie": "theme=dark; other=1"}, {"Cookie": f"{SESSION_COOKIE}="}])
def test_requests_without_credentials_are_never_cached(router, headers):
    tag = unique_tag()
    path = cached_path(tag)
    for _ in range(3):
        r = nginx(router, path, headers=headers)
        assert r.status == 200 and r.one("X-Cache") == "PASS", r.headers
        assert_no_internal_headers(r)
    assert backend_hits(router, tag) == 3
    # An empty access_token is no credential either.
    assert nginx(router, path + "&access_token=").one("X-Cache") == "PASS"


@pytest.mark.parametrize("case", ["cache-control-only", "public-s-maxage", "no-store", "status-404", "status-500",
                                  "set-cookie", "vary-star", "max-age-0"])
def test_only_surrogate_control_makes_a_response_cacheable(router, case):
    tag = unique_tag()
    headers = {
        "cache-control-only": ["Cache-Control:private, max-age=60"],
        "public-s-maxage": ["Cache-Control:public, max-age=60, s-maxage=60"],
        "no-store": ["Cache-Control:no-store", "Surrogate-Control:no-store"],
        "status-404": ["Surrogate-Control:max-age=60"],
        "status-500": ["Surrogate-Control:max-age=60"],
        "set-cookie": ["Surrogate-Control:max-age=60", "Set-Cookie:a=b"],
        "vary-star": ["Surrogate-Control:max-age=60", "Vary:*"],
        "max-age-0": ["Surrogate-Control:max-age=0"],
    }[case]
    params = [("tag", tag)] + [("header", v) for v in headers]
    if case.startswith("status-"):
        params.append(("status", case[len("status-"):]))
    path = "/api/v3/maps/carto_dw/table/2/1/1?" + urllib.parse.urlencode(params)
    statuses = set()
    for _ in range(2):
        r = nginx(router, path, token="tok-A")
        statuses.add(r.status)
        assert r.one("X-Cache") == "MISS", (case, r.headers)
        assert r.one("Surrogate-Control") is None
    assert backend_hits(router, tag) == 2
    if case.startswith("status-"):
        assert statuses == {int(case[len("status-"):])}
        assert r.json()["backend"] == "maps-api", "backend errors pass through untouched"


def test_ttl_comes_from_surrogate_control(router):
    tag = unique_tag()
    path = cached_path(tag, max_age=1)
    assert nginx(router, path, token="tok").one("X-Cache") == "MISS"
    assert nginx(router, path, token="tok").one("X-Cache") == "HIT"
    time.sleep(1.2)
    # Expired: no grace (an expired credential must never get a stored answer), so it refetches.
    assert nginx(router, path, token="tok").one("X-Cache") == "MISS"
    assert backend_hits(router, tag) == 2


def test_client_no_cache_evicts_and_refetches(router):
    tag = unique_tag()
    path = cached_path(tag)
    assert nginx(router, path, token="tok").one("X-Cache") == "MISS"
    first = nginx(router, path, token="tok")
    assert first.one("X-Cache") == "HIT"
    for hdr in ({"Cache-Control": "no-cache"}, {"Pragma": "no-cache"}, {"Cache-Control": "no-store"}):
        assert nginx(router, path, token="tok", headers=hdr).one("X-Cache") == "MISS"
    assert backend_hits(router, tag) == 4
    # The refetched answer replaced the old one for everybody with this credential.
    again = nginx(router, path, token="tok")
    assert again.one("X-Cache") == "HIT" and again.body != first.body
    # Another credential's entry is not touched by it.
    nginx(router, path, token="tok-2")
    nginx(router, path, token="tok", headers={"Cache-Control": "no-cache"})
    assert nginx(router, path, token="tok-2").one("X-Cache") == "HIT"


def test_client_max_age_has_entries_of_its_own(router):
    """The backend lowers its max-age to the client's (§1.6), so those answers are kept apart."""
    tag = unique_tag()
    path = cached_path(tag)
    assert nginx(router, path, token="tok").one("X-Cache") == "MISS"
    for _ in range(2):
        assert nginx(router, path, token="tok").one("X-Cache") == "HIT"
        assert nginx(router, path, token="tok", headers={"Cache-Control": "max-age=30"}).one("X-Cache") in ("MISS", "HIT")
    assert nginx(router, path, token="tok", headers={"Cache-Control": "max-age=30"}).one("X-Cache") == "HIT"
    assert backend_hits(router, tag) == 2
    seen = [p for p in router.fakes["maps-api"].requests if f"tag={tag}&" in p.get("QUERY_STRING", "") + "&"]
    assert [p.get("HTTP_CACHE_CONTROL") for p in seen] == [None, "max-age=30"]


def test_only_cacheable_paths_are_looked_up(router):
    tag = unique_tag()
    hdrs = urllib.parse.urlencode([("tag", tag), ("header", "Surrogate-Control:max-age=60")])
    for path in (f"/api/v3/sql/carto_dw/job/1?{hdrs}", f"/api/v3/sql/carto_dw/query/x?{hdrs}"):
        for _ in range(2):
            r = nginx(router, path, token="tok")
            assert r.status == 200 and r.one("X-Cache") == "PASS", (path, r.headers)


def test_other_methods_go_straight_to_maps_api(router):
    """POST (and PUT/PATCH/DELETE/OPTIONS) never touch Varnish: nothing to cache, and a client that
    hangs up must still cancel its query (Varnish keeps a passed request running)."""
    tag = unique_tag()
    path = cached_path(tag, kind="sql")
    body = json.dumps({"q": "select 1", "pad": "x" * (9 * 1024 * 1024)}).encode()
    r = nginx(router, path, "POST", token="tok", headers={"Content-Type": "application/json"}, body=body)
    assert r.status == 200 and r.one("X-Cache") is None
    assert r.json()["stdin_bytes"] == len(body)
    assert r.json()["params"]["CONTENT_LENGTH"] == str(len(body))
    for method in ("PUT", "PATCH", "DELETE", "OPTIONS"):
        r = nginx(router, path, method, token="tok")
        assert r.status == 200 and r.one("X-Cache") is None, method
        assert r.json()["params"]["REQUEST_METHOD"] == method
    # A GET of the same URL is still a miss: nothing above was stored.
    assert nginx(router, path, token="tok").one("X-Cache") == "MISS"


def test_fastcgi_params_through_the_cache(router):
    """The internal server gives maps-api the client's view (address, port, scheme, host)."""
    r = nginx(router, f"/api/v3/maps/carto_dw/table?tag={unique_tag()}", token="tok",
              headers={"Host": "maps.example.test", "X-Forwarded-For": "203.0.113.9", "Proxy": "http://evil:3128",
                       "X-Tessera-Remote-Addr": "198.51.100.1", "X-Request-Id": "outer-proxy-1234abcd",
                       "Cache-Control": "max-age=30"})
    assert r.one("X-Cache") in ("MISS", "PASS")
    p = r.json()["params"]
    assert p["REMOTE_ADDR"] == "127.0.0.1", "never taken from a client header"
    assert p["SERVER_PORT"] == str(router.http_port)
    assert p["SERVER_NAME"] == "maps.example.test" and p["HTTP_HOST"] == "maps.example.test"
    assert p["REQUEST_SCHEME"] == "http" and "HTTPS" not in p
    assert p["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert p["HTTP_X_FORWARDED_FOR"] == "203.0.113.9, 127.0.0.1"
    assert p["HTTP_X_FORWARDED_PROTO"] == "http"
    assert p["REQUEST_ID"] == p["HTTP_X_REQUEST_ID"] == "outer-proxy-1234abcd" == r.one("X-Request-Id")
    assert p.get("HTTP_PROXY", "") == ""
    assert p["HTTP_CACHE_CONTROL"] == "max-age=30", "the client's max-age reaches maps-api on a miss (§1.6)"
    assert not [k for k in p if k.startswith(("HTTP_X_TESSERA", "HTTP_X_VARNISH"))], p


def test_long_request_lines_pass_through_the_cache(router):
    """nginx accepts 16k request lines (GET SQL up to ~7000 characters, encoded); so must Varnish."""
    q = "select " + "1," * 3000 + "1"
    path = "/api/v3/sql/carto_dw/query?" + urllib.parse.urlencode({"q": q, "tag": unique_tag()})
    assert len(path) > 12_000
    r = nginx(router, path, token="tok", headers={"X-Long": "y" * 12_000})
    assert r.status == 200, r
    assert r.json()["params"]["QUERY_STRING"].startswith("q=select")


# ---- invalidation: A13 and the purge endpoint -------------------------------------------------


@pytest.mark.parametrize("method", ["PURGE", "BAN", "FOO"])
def test_clients_cannot_invalidate_through_nginx(router, method):
    tag = unique_tag()
    path = cached_path(tag)
    assert nginx(router, path, token="tok").one("X-Cache") == "MISS"
    for target in (path, "/api/v3/maps/", "/api/v3/sql/carto_dw/query", "/api/v3/stats/x"):
        r = nginx(router, target, method, token="tok", headers={"Xkey-Purge": "src:src1", "X-Ban-All": "1"})
        assert_json_error(r, 405, "method_not_allowed")
    assert nginx(router, path, token="tok").one("X-Cache") == "HIT", "the cache is unaffected"


def test_client_endpoint_of_varnish_refuses_invalidation(router):
    """Second lock: even a PURGE that reaches Varnish's client socket (where nginx's requests arrive,
    from a loopback-equivalent unix socket) is refused."""
    tag = unique_tag()
    path = cached_path(tag)
    assert nginx(router, path, token="tok").one("X-Cache") == "MISS"
    for method, hdrs in (("PURGE", {"Xkey-Purge": "src:src1"}), ("BAN", {"X-Ban-All": "1"})):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(router.varnish_socket))
            extra = "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
            s.sendall(f"{method} / HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n".encode())
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 403"), head
        assert json.loads(body)["code"] == "forbidden"
    assert nginx(router, path, token="tok").one("X-Cache") == "HIT"


def test_purge_endpoint_serves_only_invalidation(router):
    status, _, body = router.varnish_request("GET", "/api/v3/maps/carto_dw/table/1/0/0")
    assert status == 405 and json.loads(body)["code"] == "method_not_allowed"
    for method, hdrs in (("PURGE", {}), ("BAN", {}), ("BAN", {"X-Ban-Source": 'a" || obj.status != 0'}),
                         ("BAN", {"X-Ban-Connection": "a b"})):
        status, doc = invalidate(router, method, hdrs)
        assert status == 400 and doc["code"] == "bad_request", (method, hdrs, doc)


def _three_entries(router, token="tok"):
    """Three cached objects: (source, connection, credential) = (s1,c1,t1) (s2,c1,t1) (s3,c2,t2)."""
    tag = unique_tag()
    paths = [cached_path(tag + "a", source=f"{tag}s1", connection=f"acc:{tag}c1", credential=f"token:{tag}t1"),
             cached_path(tag + "b", source=f"{tag}s2", connection=f"acc:{tag}c1", credential=f"token:{tag}t1"),
             cached_path(tag + "c", source=f"{tag}s3", connection=f"acc:{tag}c2", credential=f"token:{tag}t2")]
    for p in paths:
        assert nginx(router, p, token=token).one("X-Cache") == "MISS"
        assert nginx(router, p, token=token).one("X-Cache") == "HIT"
    return tag, paths


def _states(router, paths, token="tok"):
    return [nginx(router, p, token=token).one("X-Cache") for p in paths]


@pytest.mark.parametrize("how", ["xkey-purge", "xkey-softpurge", "ban"])
def test_invalidate_by_source_removes_only_that_source(router, how):
    tag, paths = _three_entries(router)
    if how == "ban":
        status, doc = invalidate(router, "BAN", {"X-Ban-Source": f"{tag}s2"})
        assert (status, doc) == (200, {"banned": True})
    else:
        header = "Xkey-Purge" if how == "xkey-purge" else "Xkey-Softpurge"
        status, doc = invalidate(router, "PURGE", {header: f"src:{tag}s2"})
        assert (status, doc) == (200, {"purged": 1})
    # Without grace a soft purge is as immediate as a hard one for clients.
    assert _states(router, paths) == ["HIT", "MISS", "HIT"]
    assert backend_hits(router, tag + "a") == 1 and backend_hits(router, tag + "c") == 1


def test_invalidate_by_connection_and_credential(router):
    tag, paths = _three_entries(router)
    status, doc = invalidate(router, "PURGE", {"Xkey-Purge": f"conn:acc:{tag}c1"})
    assert (status, doc) == (200, {"purged": 2})
    assert _states(router, paths) == ["MISS", "MISS", "HIT"]
    assert _states(router, paths) == ["HIT", "HIT", "HIT"]
    # Revocation: every entry stored for one credential, in one request (A12).
    status, doc = invalidate(router, "PURGE", {"Xkey-Purge": f"cred:token:{tag}t2"})
    assert (status, doc) == (200, {"purged": 1})
    assert _states(router, paths) == ["HIT", "HIT", "MISS"]
    assert invalidate(router, "BAN", {"X-Ban-Credential": f"token:{tag}t1", "X-Ban-Source": f"{tag}s1"})[0] == 200
    assert _states(router, paths) == ["MISS", "HIT", "HIT"]
    assert invalidate(router, "BAN", {"X-Ban-Connection": f"acc:{tag}c2"})[0] == 200
    assert _states(router, paths) == ["HIT", "HIT", "MISS"]


def test_ban_all(router):
    tag, paths = _three_entries(router)
    assert invalidate(router, "BAN", {"X-Ban-All": "1"}) == (200, {"banned": True})
    assert _states(router, paths) == ["MISS", "MISS", "MISS"]


# ---- failures: F13 and JSON errors --------------------------------------------------------------


def test_varnish_down_is_json_502_for_cached_routes_only(router):
    tag = unique_tag()
    path = cached_path(tag, kind="sql")
    router.stop_varnish()
    try:
        for p in (path, "/api/v3/maps/carto_dw/table/1/0/0", "/api/v3/stats/carto_dw/t/c"):
            assert_json_error(nginx(router, p, token="tok"), 502, "bad_gateway")
        # What never went through Varnish is unaffected.
        r = nginx(router, path, "POST", token="tok", headers={"Content-Type": "application/json"}, body=b"{}")
        assert r.status == 200 and r.json()["backend"] == "maps-api"
        assert nginx(router, "/api/v3/connections").json()["backend"] == "workspace-api"
        assert nginx(router, "/").status == 200
    finally:
        router.start_varnish()
    r = nginx(router, path, token="tok")
    assert r.status == 200 and r.one("X-Cache") == "MISS"


def test_varnish_backend_unreachable_is_json_503():
    """Varnish's own error (its backend, nginx's internal server, cannot be reached) keeps the JSON
    error contract. A Varnish alone, whose backend socket does not exist."""
    import shutil
    import tempfile
    from pathlib import Path

    from stack import Stack

    root = Path(tempfile.mkdtemp(prefix="tessera-vonly-", dir="/tmp"))
    alone = Stack(root)
    try:
        alone.start_varnish()
        request = (b"GET /api/v3/maps/carto_dw/table/1/0/0?source=x HTTP/1.1\r\nHost: localhost\r\n"
                   b"Authorization: Bearer tok\r\nX-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
                   b"Connection: close\r\n\r\n")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(15)
            s.connect(str(alone.varnish_socket))
            s.sendall(request)
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0].startswith("HTTP/1.1 503"), lines
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        assert headers["content-type"] == "application/json"
        assert headers["access-control-allow-origin"] == "*"
        assert headers["cache-control"] == "no-store" and headers["retry-after"] == "5"
        assert headers["x-request-id"] == "0123456789abcdef0123456789abcdef"
        assert "x-varnish" not in headers and "via" not in headers
        doc = json.loads(body)
        assert doc["status"] == 503 and doc["code"] == "service_unavailable" and doc["error"]
    finally:
        alone.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def test_maps_api_down_is_json_502_through_the_cache(router):
    router.fakes["maps-api"].stop()
    try:
        r = nginx(router, cached_path(unique_tag()), token="tok")
        assert_json_error(r, 502, "bad_gateway")
        assert r.one("X-Cache") == "MISS" and r.one("Cache-Control") == "no-store"
        assert_json_error(nginx(router, "/api/v3/sql/carto_dw/query", "POST", token="tok", body=b"{}"), 502, "bad_gateway")
    finally:
        router.fakes["maps-api"] = FakeFastCGI(router.api_socket("maps-api"), "maps-api").start()
    assert nginx(router, cached_path(unique_tag()), token="tok").status == 200


# ============================================================================================
# The real maps-api (stack fixture)

PLACES_Q = "SELECT cartodb_id, name FROM e2e_places ORDER BY cartodb_id"
CACHE_TABLES = ("public.e2e_cache_a", "public.e2e_cache_b")


@pytest.fixture(scope="module")
def cache_tables(stack, dw):
    h.warehouse(stack, "".join(
        f"DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (id integer, geom geometry(Point, 4326)); "
        f"INSERT INTO {t} VALUES (1, ST_SetSRID(ST_MakePoint(1, 1), 4326));" for t in CACHE_TABLES))
    return CACHE_TABLES


def local(stack, url: str) -> str:
    assert url.startswith(stack.base_url + "/api/v3/"), url
    return url[len(stack.base_url):]


def tile_urls(stack, api, token: str, table: str) -> tuple[str, str]:
    """(TileJSON path, path of tile 0/0/0) of a table source."""
    r = api.get("/api/v3/maps/carto_dw/table", params={"name": table}, token=token)
    assert r.status == 200, r
    tilejson = local(stack, r.json()["tilejson"]["url"][0])
    r = api.get(tilejson, token=token)
    assert r.status == 200, r
    tile = local(stack, r.json()["tiles"][0]).replace("{z}", "0").replace("{x}", "0").replace("{y}", "0")
    return tilejson, tile


def sql_path(q: str) -> str:
    return h.SQL_PATH.format(conn="carto_dw") + "?" + h.encode_query({"q": q})


@pytest.mark.parametrize("what", ["tilejson", "tile", "sql"])
def test_real_get_served_twice_is_a_hit(stack, api, full_token, cache_tables, what):
    tilejson, tile = tile_urls(stack, api, full_token, cache_tables[0])
    path = {"tilejson": tilejson, "tile": tile, "sql": sql_path(PLACES_Q + " /* " + h.unique() + " */")}[what]
    first = nginx(stack, path, token=full_token)
    assert first.status == 200, first
    assert_no_internal_headers(first)
    second = nginx(stack, path, token=full_token)
    assert second.status == 200 and second.body == first.body
    assert_no_internal_headers(second)
    assert second.one("X-Cache") == "HIT", second.headers


def test_real_auto_refresh_handshake_gets_json(stack, api, full_token, cache_tables):
    """The autoRefresh round of fetchMap: handshake and TileJSON again, with If-Modified-Since: <now>."""
    tilejson, _ = tile_urls(stack, api, full_token, cache_tables[0])
    assert nginx(stack, tilejson, token=full_token).one("X-Cache") == "HIT", "stored, so Varnish could answer 304"
    now = http_now_after_store()
    r = nginx(stack, tilejson, token=full_token, headers={"If-Modified-Since": now})
    assert r.status == 200 and r.json()["tilejson"] == "3.0.0", r
    handshake = "/api/v3/maps/carto_dw/table?" + urllib.parse.urlencode({"name": cache_tables[0]})
    r = nginx(stack, handshake, token=full_token, headers={"If-Modified-Since": now})
    assert r.status == 200 and local(stack, r.json()["tilejson"]["url"][0]) == tilejson, r


def test_real_other_token_never_gets_a_stored_response(stack, api, full_token, make_token, dw):
    """A token without a grant on the table gets its 403, never the 200 stored for another token."""
    path = sql_path(PLACES_Q + " /* " + h.unique() + " */")
    for _ in range(2):
        r = nginx(stack, path, token=full_token)
        assert r.status == 200 and len(r.json()["rows"]) == 4
        assert_no_internal_headers(r)
    other = make_token(["public.e2e_secret"])["token"]
    for _ in range(2):
        r = nginx(stack, path, token=other)
        assert r.status == 403, r
        assert r.one("X-Cache") != "HIT"
    r = nginx(stack, path + "&access_token=" + other)
    assert r.status == 403 and r.one("X-Cache") != "HIT"


def test_real_requests_without_credentials_are_never_cached(stack):
    path = sql_path(PLACES_Q)
    for _ in range(2):
        r = nginx(stack, path)
        h.assert_error(h.Resp(r.status, r.headers, r.body), 401)
        assert r.one("X-Cache") == "PASS"


def test_real_post_is_never_cached(stack, full_token, dw):
    body = json.dumps({"q": PLACES_Q}).encode()
    for _ in range(2):
        r = nginx(stack, h.SQL_PATH.format(conn="carto_dw"), "POST", token=full_token,
                  headers={"Content-Type": "application/json"}, body=body)
        assert r.status == 200 and len(r.json()["rows"]) == 4
        assert r.one("X-Cache") is None, "POST goes straight to maps-api"


def test_real_purge_and_ban_from_clients_are_refused(stack, full_token, dw):
    path = sql_path(PLACES_Q)
    before = nginx(stack, path, token=full_token)
    assert before.status == 200
    for method in ("PURGE", "BAN"):
        r = nginx(stack, path, method, token=full_token, headers={"Xkey-Purge": "conn:x", "X-Ban-All": "1"})
        assert_json_error(r, 405, "method_not_allowed")
    after = nginx(stack, path, token=full_token)
    assert after.status == 200 and after.json()["rows"] == before.json()["rows"]


def test_real_ban_by_source_removes_only_that_source(stack, api, full_token, cache_tables):
    tiles = [tile_urls(stack, api, full_token, t)[1] for t in cache_tables]
    for t in tiles:
        nginx(stack, t, token=full_token)
        assert nginx(stack, t, token=full_token).one("X-Cache") == "HIT"
    source = urllib.parse.parse_qs(urllib.parse.urlsplit(tiles[0]).query)["source"][0]
    status, doc = invalidate(stack, "BAN", {"X-Ban-Source": source})
    assert (status, doc) == (200, {"banned": True})
    assert nginx(stack, tiles[0], token=full_token).one("X-Cache") == "MISS"
    assert nginx(stack, tiles[1], token=full_token).one("X-Cache") == "HIT"


def test_real_varnish_down_is_json_502_for_maps_routes(stack, api, full_token, dw):
    stack.stop_varnish()
    try:
        for path in (sql_path(PLACES_Q), "/api/v3/maps/carto_dw/table?name=public.e2e_places",
                     "/api/v3/stats/carto_dw/public.e2e_places/cartodb_id"):
            assert_json_error(nginx(stack, path, token=full_token), 502, "bad_gateway")
        # Other APIs, and the maps-api requests that never use the cache, are unaffected.
        h.assert_ok(api.sql(PLACES_Q, full_token, method="POST"))
        h.assert_ok(api.get("/api/health"))
    finally:
        stack.start_varnish()
    h.assert_ok(api.sql(PLACES_Q, full_token))

