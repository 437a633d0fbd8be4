"""Issue 11, case 1 and the production defaults: warehouse credentials are never the platform's.

Replays the metadata takeover (a connection to the local socket as the metadata role, then the SQL API)
and every way around the rule (loopback aliases, host lists, keywords smuggled into fields, the
platform's roles), a second organisation naming carto_dw's role, connections stored before the rule,
the connection test used as a port/role scanner, and nginx's production plain-HTTP server (redirect,
HSTS, ACME) and its JSON error pages.

The harness allow-lists 127.0.0.1:<pg port> (TESSERA_CONNECTION_HOST_ALLOWLIST) so that user
connections can reach the test cluster over TCP as their own roles; the platform's roles are refused
there by name and, underneath, by pg_hba (scram) and passwords only the services know.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

import helpers as h
from helpers import assert_error, assert_ok, unique
from stack import PLAIN_HTTP_REDIRECT, Stack

CONNS = "/api/v3/connections"
METADATA_LEAK = "SELECT email, password_hash FROM users"


@pytest.fixture(scope="module")
def admin(api, admin):
    """The session's admin with a token of this module's own: connection tests are rate-limited per
    credential, and this module makes many."""
    import dataclasses
    token, client_id, _ = h.oauth_token(api, admin.session, "e2e-isolation")
    return dataclasses.replace(admin, token=token, client_id=client_id)


@pytest.fixture(scope="module")
def editor(stack, api, admin):
    email = f"{unique('editor')}@example.com"
    inv = assert_ok(api.post("/api/v3/invitations", token=admin.token, json_body={"email": email, "role": "editor"}), 201)
    password = "editor-" + os.urandom(8).hex()
    assert_ok(api.post("/api/v3/auth/invitations/accept", json_body={"token": inv["token"], "password": password}), 201)
    return h.signed_in_user(api, email, password, "e2e-editor")


def refused(r, code="connection_not_allowed", status=403) -> dict:
    doc = assert_error(r, status, code)
    for leak in ("password_hash", "@tessera.local"):
        assert leak not in r.text
    return doc


def attempt(api, who, body) -> None:
    """Create, then test unsaved: both refused before anything connects; nothing is stored."""
    name = unique("e2e_atk")
    refused(api.post(CONNS, token=who.token, json_body={"name": name, **body}))
    refused(api.post(f"{CONNS}/test", token=who.token, json_body={"name": name, **body}))
    assert_error(api.get(f"{CONNS}/{name}", token=who.token), 404, "connection_not_found")


# ---- case 1: the metadata takeover ------------------------------------------------------------


def test_metadata_role_over_the_socket_is_refused_for_admins_and_editors(api, admin, editor, stack):
    body = {"host": str(stack.pg_socket_dir), "port": stack.pg_port, "database": "tessera", "user": "tessera"}
    for who in (admin, editor):
        attempt(api, who, body)
        # the same socket as an ordinary role: the socket alone is refused, naming the allow-list key
        doc = refused(api.post(CONNS, token=who.token, json_body={"name": unique("e2e_atk"), **body, "user": "e2e_dw_user"}))
        assert "TESSERA_CONNECTION_HOST_ALLOWLIST" in doc["error"]


@pytest.mark.parametrize("host", ["localhost", "LocalHost", "::1", "127.0.0.2", "127.1", "2130706433", "0x7f000001",
                                  "0.0.0.0", "::", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1", "db.localhost"])
def test_loopback_aliases_are_refused_even_with_valid_credentials(api, admin, stack, dw_user, host):
    """dw_user's credentials work on 127.0.0.1:<port> (allow-listed); any other spelling of this
    machine is refused before connecting, whichever role."""
    doc = refused(api.post(CONNS, token=admin.token, json_body={"name": unique("e2e_lb"), **dw_user, "host": host}))
    assert "TESSERA_CONNECTION_HOST_ALLOWLIST" in doc["error"]
    attempt(api, admin, {**dw_user, "host": host, "user": "tessera", "database": "tessera"})


def test_allow_listed_address_is_not_a_different_port(api, admin, stack, dw_user):
    """127.0.0.1 is allowed on the cluster's port only (a `host:port` entry)."""
    refused(api.post(f"{CONNS}/test", token=admin.token, json_body={**dw_user, "name": "t", "port": stack.pg_port + 1}))
    assert assert_ok(api.post(f"{CONNS}/test", token=admin.token, json_body={**dw_user, "name": "t"}))["ok"] is True


@pytest.mark.parametrize("over", [
    {"host": "10.255.255.1,127.0.0.2"},                         # a host list with this machine in it
    {"host": "10.255.255.1,localhost"},
    {"host": "10.255.255.1,{socket}"},                           # ... or the socket
    {"host": "@abstract"},                                        # abstract unix socket
    {"database": "dbname=tessera host={socket} user=tessera"},   # a dbname that is itself a conninfo
    {"database": "postgresql://tessera@/tessera?host={socket}"},
    {"database": "service=tessera"},
])
def test_host_lists_and_conninfo_in_fields_are_refused(api, admin, stack, dw_user, over):
    body = {k: v.replace("{socket}", str(stack.pg_socket_dir)) if isinstance(v, str) else v for k, v in over.items()}
    attempt(api, admin, {**dw_user, **body})


@pytest.mark.parametrize("over", [
    {"host": "127.0.0.1' hostaddr='127.0.0.1"},                  # quoting: one (unresolvable) host name
    {"user": "e2e_dw_user' options='-c role=tessera"},           # one (non-existent) role name
    {"user": "e2e_dw_user options=-crole=carto_dw"},
    {"hostaddr": "127.0.0.1", "service": "tessera", "options": "-c role=tessera", "host": "10.255.255.1",
     "connect_timeout": "1"},                                    # not fields of a connection: ignored
])
def test_keywords_smuggled_into_fields_are_inert(api, admin, stack, dw_user, over):
    name = unique("e2e_kw")
    r = api.post(CONNS, token=admin.token, json_body={"name": name, **dw_user, **over})
    if r.status == 201:
        created = r.json()
        assert "hostaddr" not in created and "options" not in created
        q = api.sql(METADATA_LEAK, admin.token, conn=name, timeout=30)
        assert q.status >= 400 and "password_hash" not in q.text, q
        api.delete(f"{CONNS}/{created['id']}", token=admin.token)
    else:
        assert r.status in (400, 403), r
    t = api.post(f"{CONNS}/test", token=admin.token, json_body={"name": name, **dw_user, **over}, timeout=30)
    assert t.status in (400, 403) and "password_hash" not in t.text, t


@pytest.mark.parametrize("role", ["tessera", "carto_dw", "postgres"])
def test_platform_roles_are_refused_on_an_allowed_host(api, admin, stack, role):
    """127.0.0.1:<port> is allow-listed, yet no platform role, even with its real password."""
    body = {"host": "127.0.0.1", "port": stack.pg_port, "database": "tessera", "user": role,
            "password": stack.pg_passwords.get(role, "x"), "sslmode": "disable"}
    doc = refused(api.post(CONNS, token=admin.token, json_body={"name": unique("e2e_role"), **body}))
    assert "platform" in doc["error"]
    refused(api.post(f"{CONNS}/test", token=admin.token, json_body={"name": "t", **body}))


def test_the_database_refuses_platform_roles_without_their_passwords(stack):
    """Beneath the API: over TCP every role needs its password (scram), the metadata database is
    closed to PUBLIC, and carto_dw's role is not the metadata role and belongs to no other role."""
    for role, db in (("tessera", "tessera"), ("carto_dw", "carto_dw"), ("postgres", "postgres")):
        r = subprocess.run(["psql", "-X", "-w", "-d", f"host=127.0.0.1 port={stack.pg_port} dbname={db} user={role}",
                            "-c", "SELECT 1"], capture_output=True, text=True, env={**os.environ, "PGPASSWORD": "guess"})
        assert r.returncode != 0 and "password authentication failed" in r.stderr, (role, r.stderr)
    assert stack.psql("SELECT has_database_privilege('public', 'tessera', 'CONNECT')") == "f"
    assert stack.psql("SELECT has_database_privilege('carto_dw', 'tessera', 'CONNECT')") == "f"
    assert stack.psql("SELECT count(*) FROM pg_auth_members WHERE member = 'carto_dw'::regrole") == "0"
    assert stack.psql("SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = 'carto_dw'") == "f"


def test_carto_dw_is_the_platforms_own_record_on_its_own_role(api, admin, stack):
    c = assert_ok(api.get(f"{CONNS}/carto_dw", token=admin.token))
    assert c["user"] == "carto_dw" and c["host"] == "127.0.0.1" and c["has_password"] is True
    assert c["platform_managed"] is True
    assert assert_ok(api.sql("SELECT current_user AS u", admin.token))["rows"] == [{"u": "carto_dw"}]
    r = api.sql("SELECT count(*) FROM pg_database WHERE has_database_privilege(datname, 'CONNECT') AND datname = 'tessera'",
                admin.token)
    assert assert_ok(r)["rows"] == [{"count": 0}]


def test_users_cannot_create_or_edit_a_record_into_the_platform_state(api, admin, stack, dw_user):
    name = unique("e2e_pm")
    refused(api.post(CONNS, token=admin.token, json_body={"name": name, **dw_user, "host": "127.0.0.2",
                                                          "platform_managed": True}))
    created = assert_ok(api.post(CONNS, token=admin.token, json_body={"name": name, **dw_user, "platform_managed": True}), 201)
    assert created["platform_managed"] is False
    api.delete(f"{CONNS}/{created['id']}", token=admin.token)
    # Editing where or as whom carto_dw connects makes it a user record: refused here (loopback, platform role).
    for change in ({"host": str(stack.pg_socket_dir)}, {"user": "tessera", "database": "tessera"}, {"sslmode": "prefer"}):
        refused(api.patch(f"{CONNS}/carto_dw", token=admin.token, json_body=change))
    c = assert_ok(api.get(f"{CONNS}/carto_dw", token=admin.token))
    assert c["platform_managed"] is True and c["user"] == "carto_dw" and c["host"] == "127.0.0.1", c
    assert_ok(api.sql("SELECT 1 AS one", admin.token))


def test_a_second_organisation_cannot_reach_carto_dw(api, admin, other_org, stack):
    """The second organisation has no embedded warehouse (only setup's first one does), and naming
    carto_dw's role is refused wherever it points; its password is never returned."""
    assert_error(api.get(f"{CONNS}/carto_dw", token=other_org.token), 404, "connection_not_found")
    assert_error(api.sql("SELECT 1", other_org.token), 404)
    for host in ("127.0.0.1", str(stack.pg_socket_dir), "localhost"):
        attempt(api, other_org, {"host": host, "port": stack.pg_port, "database": "carto_dw", "user": "carto_dw",
                                 "password": stack.pg_passwords["carto_dw"], "sslmode": "disable"})
    assert stack.pg_passwords["carto_dw"] not in api.get(f"{CONNS}/carto_dw", token=admin.token).text


def test_connections_stored_before_the_rule_are_refused_at_use_and_reported(api, admin, stack, dw_user):
    """An upgrade keeps old rows: a socket/loopback connection answers 403 naming the allow-list key
    (nothing connects), and `tessera status` lists it."""
    name = unique("e2e_legacy")
    account = h.metadata(stack, f"SELECT account_id FROM users WHERE email = '{stack.admin_email}'")
    h.metadata(stack, f"INSERT INTO connections (account_id, name, host, port, database, username, sslmode) VALUES "
                      f"('{account}', '{name}', '{stack.pg_socket_dir}', {stack.pg_port}, 'tessera', 'e2e_dw_user', 'disable')")
    token = assert_ok(api.post("/api/v3/tokens", token=admin.token,
                               json_body={"grants": [{"connection_name": name, "source": "*"}]}), 201)["token"]
    for t in (admin.token, token):
        doc = refused(api.sql(METADATA_LEAK, t, conn=name))
        assert "TESSERA_CONNECTION_HOST_ALLOWLIST" in doc["error"]
    refused(api.post(f"{CONNS}/{name}/test", token=admin.token))
    status = stack.tessera("status")
    assert f"connection {name} " in status and "refused at use" in status, status
    api.delete(f"{CONNS}/{name}", token=admin.token)


# ---- case 2: the connection test is not a scanner -----------------------------------------------


def test_connection_test_reports_only_failure_classes(api, admin, stack, dw_user):
    """A closed port, a missing role, a wrong password and a missing database answer with one of two
    classes, never the server's own words (which tell open ports and existing roles apart)."""
    answers = {}
    for label, over in {"closed port": {"host": "10.255.255.1", "port": 9},
                        "no role": {"user": "no_such_role_e2e"},
                        "wrong password": {"password": "wrong"},
                        "no database": {"database": "no_such_db_e2e"}}.items():
        r = api.post(f"{CONNS}/test", token=admin.token, json_body={**dw_user, "name": "t", **over}, timeout=30)
        assert r.status == 400 and r.json()["ok"] is False, (label, r)
        answers[label] = r.json()["message"]
        for leak in ("does not exist", "password authentication", "refused", "timeout", "no_such", "5432", "port"):
            assert leak not in answers[label].lower(), (label, answers[label])
    assert answers["no role"] == answers["wrong password"] == answers["no database"], answers


def test_connection_test_is_rate_limited_per_client_and_credential(api, admin, stack):
    token, _, _ = h.oauth_token(api, admin.session, "e2e-scanner")
    body = {"name": "t", "host": "127.0.0.3", "port": 5432, "database": "d", "user": "u"}
    statuses = [api.post(f"{CONNS}/test", token=token, json_body=body).status for _ in range(100)]
    assert statuses[0] == 403 and 429 in statuses, statuses
    r = api.post(f"{CONNS}/test", token=token, json_body=body)
    h.assert_error(r, 429, "too_many_requests", from_app=False)
    # another credential is not affected
    other, _, _ = h.oauth_token(api, admin.session, "e2e-scanner-2")
    assert api.post(f"{CONNS}/test", token=other, json_body=body).status == 403


# ---- case 3: production defaults of the packaged nginx site ------------------------------------


@pytest.fixture(scope="module")
def prod_router(stack):
    """nginx rendered as the package renders it (plain HTTP = redirect), with no API backends."""
    s = Stack(Path(tempfile.mkdtemp(prefix="tessera-prod-", dir="/tmp")))
    acme = s.root / "acme" / ".well-known" / "acme-challenge"
    acme.mkdir(parents=True)
    (acme / "tok-123").write_text("tok-123.key\n")
    os.chmod(s.root / "acme", 0o755)
    try:
        s.start_nginx(varnish=False, plain_http=PLAIN_HTTP_REDIRECT)
        yield s
    finally:
        s.stop_all()


def plain(port: int, path: str, method: str = "GET", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.msg, r.read()
    finally:
        c.close()


def tls(port: int, path: str, method: str = "GET", body=None, headers=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.msg, r.read()
    finally:
        c.close()


@pytest.mark.parametrize("path", ["/", "/api/v3/sql/carto_dw/query?q=select%201", "/acc/", "/.well-known/other"])
def test_plain_http_redirects_to_https(prod_router, path):
    status, headers, _ = plain(prod_router.http_port, path, headers={"Host": "maps.example.test"})
    assert status == 301 and headers["Location"] == f"https://maps.example.test{path}", (status, dict(headers))
    assert headers.get("Strict-Transport-Security") is None


def test_acme_challenges_stay_on_plain_http(prod_router):
    status, headers, body = plain(prod_router.http_port, "/.well-known/acme-challenge/tok-123")
    assert status == 200 and body == b"tok-123.key\n"
    assert plain(prod_router.http_port, "/.well-known/acme-challenge/missing")[0] == 404


def test_https_sends_hsts_and_json_errors(prod_router):
    import json
    for path in ("/", "/api/v3/connections"):
        _, headers, _ = tls(prod_router.tls_port, path)
        assert headers["Strict-Transport-Security"].startswith("max-age="), path
    status, headers, body = tls(prod_router.tls_port, "/api/v3/connections")    # no backend: 502
    doc = json.loads(body)
    assert status == 502 and headers["Content-Type"].startswith("application/json")
    assert doc == {"error": doc["error"], "status": 502, "code": "bad_gateway"}


def test_development_stack_keeps_plain_http(stack):
    status, headers, _ = plain(stack.http_port, "/")
    assert status == 200 and headers.get("Strict-Transport-Security") is None


def test_nginx_own_errors_on_api_are_json(stack):
    """413 (declared body over 10m), 404 (the bare /api), 400 (a broken chunked body), 405 (PURGE)."""
    import json

    def check(raw: bytes, status: int, code: str):
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == str(status).encode(), raw[:300]
        assert b"content-type: application/json" in head.lower(), head
        doc = json.loads(body.split(b"\r\n0\r\n")[0].splitlines()[-1] if b"chunked" in head.lower() else body)
        assert doc["status"] == status and doc["code"] == code and doc["error"]

    check(h.raw_http(stack, b"POST /api/v3/connections HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n"
                            b"Content-Type: application/json\r\nConnection: close\r\n\r\n", timeout=10), 413, "payload_too_large")
    check(h.raw_http(stack, b"GET /api HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=10), 404, "not_found")
    check(h.raw_http(stack, b"POST /api/v3/connections HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                            b"Connection: close\r\n\r\nzz\r\nnot hex\r\n0\r\n\r\n", timeout=10), 400, "bad_request")
    check(h.raw_http(stack, b"PURGE /api/v3/sql/carto_dw/query HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     timeout=10), 405, "method_not_allowed")
