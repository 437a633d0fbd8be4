"""Issue 11 (isolation): the tenant / role / token matrix. Every case is replayed as an attacker would,
with plain HTTP through the real stack, and asserts both the refusal and that the rightful use still
works. Principals: admin, editor, viewer, removed user, demoted user, a second organisation, a scoped
token, a public map's token, anonymous.

Cases (issue numbering): 2 removed/demoted users, 3 token visibility, 4 CSRF on GET + login CSRF +
open redirect, 6 verbatim grants, 7 jobs and map tokens, 9 `*` map datasets, 10 throttles (login delays
are in test_accounts.test_login_throttling), 11 private maps, 12 token changes and catalog probes,
plus the upgrade of an existing install (migration 011)."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse

import pytest

import helpers as h
from helpers import assert_error, assert_ok, wait_until

MAPS = "/api/v3/workspace/maps"
PUBLIC = "/api/v3/maps/public/{}"
JOBS = "/api/v3/sql/jobs"
JOB = "/api/v3/sql/carto_dw/job"
PASSWORD = "isolation-Password-3391"
# Revocation reaches every process cache (memo 1 s, Redis 3 s) within seconds.
REVOCATION_SECONDS = 15


def dataset(source="public.e2e_places", **over):
    d = {"id": "d1", "type": "table", "source": source, "connectionName": "carto_dw", "geoColumn": "geom"}
    d.update(over)
    return d


def login_with_next(api, email, password, next_path):
    """Signs in sending `next`; returns (session, the path the server says to go to)."""
    r = api.post("/api/v3/auth/login", json_body={"email": email, "password": password, "next": next_path})
    assert r.status == 200, r
    import re
    cookie = re.match(rf"{h.SESSION_COOKIE}=([^;]+);", r.header("Set-Cookie") or "").group(1)
    doc = r.json()
    return h.Session(cookie=cookie, csrf=doc["csrf_token"], user=doc["user"]), doc["next"]


class Matrix:
    """The organisation's members (each signed in once: nginx limits sign-ins per address)."""


@pytest.fixture(scope="module")
def m(stack, api, admin, other_org, dw):
    mx = Matrix()
    mx.stack, mx.admin, mx.other = stack, admin, other_org

    def member(role, next_path="/"):
        email = f"iso-{role}-{os.urandom(3).hex()}@example.com"
        inv = assert_ok(api.post("/api/v3/invitations", token=admin.token, json_body={"email": email, "role": role}), 201)
        assert_ok(api.post("/api/v3/auth/invitations/accept", json_body={"token": inv["token"], "password": PASSWORD}), 201)
        session, went = login_with_next(api, email, PASSWORD, next_path)
        user = h.User(email=email, password=PASSWORD, session=session)
        if role != "viewer":
            user.token, user.client_id, user.extra["secret"] = h.oauth_token(api, session, f"iso-{role}")
        user.extra["next"] = went
        return user

    # The viewer's sign-in carries an open-redirect attempt; the editor's a legitimate deep link (case 12).
    mx.viewer = member("viewer", "/\t/evil.example")
    mx.editor = member("editor", "/#/maps?tab=mine")
    mx.removed = member("editor")
    mx.demoted = member("editor")
    return mx


def token_of(api, user, sources, **fields):
    grants = [{"connection_name": "carto_dw", "source": s} for s in sources]
    return assert_ok(api.post("/api/v3/tokens", token=user.token, json_body={"grants": grants, **fields}), 201)


# ---- case 2: removed and demoted users ---------------------------------------------------------------

def test_removed_user_loses_tokens_and_oauth_clients_at_once(api, m):
    leaver = m.removed
    full = token_of(api, leaver, ["*"])
    assert_ok(api.sql("SELECT count(*) AS n FROM public.e2e_places", full["token"]))
    assert api.delete(f"/api/v3/users/{leaver.id}", token=m.admin.token).status == 204
    # Without waiting for the workspace-subscriber: authentication itself checks the creator.
    wait_until(lambda: api.sql("SELECT 1 AS a", full["token"]).status == 401, REVOCATION_SECONDS)
    assert_error(api.sql("SELECT 1 AS a", full["token"]), 401, "token_revoked")
    assert_error(api.get("/api/v3/me", token=leaver.token), 401)
    # The client secret they still know mints nothing: the client was revoked, not moved to the admin.
    r = api.post("/api/oauth/token", data=urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": leaver.client_id, "client_secret": leaver.extra["secret"]}),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 401, "invalid_client")
    clients = assert_ok(api.get("/api/v3/oauth-clients", token=m.admin.token))["results"]
    assert all(c.get("client_id") != leaver.client_id for c in clients)
    # Once the subscriber ran, nothing of theirs was transferred either.
    sql = (f"SELECT result::text FROM jobs WHERE queue = 'workspace' AND kind = 'user.removed' "
           f"AND payload->>'userId' = '{leaver.id}' AND state = 'completed'")
    wait_until(lambda: h.metadata(m.stack, sql) != "", REVOCATION_SECONDS)
    result = json.loads(h.metadata(m.stack, sql))
    assert "tokens" not in result.get("moved", {}) and "oauthClients" not in result.get("moved", {})
    assert h.metadata(m.stack, f"SELECT count(*) FROM oauth_clients WHERE client_id = '{leaver.client_id}'") == "0"
    # The rightful admin is unaffected.
    assert_ok(api.get("/api/v3/me", token=m.admin.token))


def test_demoted_editor_tokens_read_only(api, m, dw):
    demoted = m.demoted
    full = token_of(api, demoted, ["*"])
    tag = h.unique("demoted")
    assert_ok(api.sql(f"INSERT INTO public.e2e_writable VALUES (1, '{tag}')", full["token"], method="POST"))
    assert_ok(api.patch(f"/api/v3/users/{demoted.id}", token=m.admin.token, json_body={"role": "viewer"}))
    # The token now writes no more than its creator may: a viewer.
    write = f"INSERT INTO public.e2e_writable VALUES (2, '{tag}')"
    # (Within the revocation bound of the process caches, as for a deleted token.)
    wait_until(lambda: api.sql(write, full["token"], method="POST").status == 403, REVOCATION_SECONDS)
    written = dw.sql(f"SELECT count(*) FROM public.e2e_writable WHERE v = '{tag}'")
    assert_error(api.sql(write, full["token"], method="POST"), 403, "read_only")
    assert dw.sql(f"SELECT count(*) FROM public.e2e_writable WHERE v = '{tag}'") == written
    assert_error(api.sql(f"DELETE FROM public.e2e_writable WHERE v = '{tag}'", full["token"], method="POST"), 403)
    # Batch jobs (writes) are refused too; reading still works.
    assert_error(api.post(JOB, token=full["token"], json_body={"query": "SELECT 1"}), 403, "role_forbidden")
    assert_ok(api.sql(f"SELECT count(*) AS n FROM public.e2e_writable WHERE v = '{tag}'", full["token"]))
    # Their OAuth token acts as the viewer they are now.
    create = lambda: api.post("/api/v3/tokens", token=demoted.token, json_body={"grants": []})  # noqa: E731
    wait_until(lambda: create().status == 403, REVOCATION_SECONDS)
    assert_error(create(), 403, "role_forbidden")


# ---- case 3 and 12: tokens are their creator's and the admins' ----------------------------------

def test_token_list_and_show_are_per_creator(api, m, dw):
    admins = token_of(api, m.admin, ["*"])
    editors = token_of(api, m.editor, ["public.e2e_places"])
    # Viewer: sees none of them, and no token string.
    viewer_list = assert_ok(api.get("/api/v3/tokens", session=m.viewer.session))["results"]
    assert all(t["id"] not in (admins["id"], editors["id"]) for t in viewer_list)
    assert admins["token"] not in json.dumps(viewer_list)
    for ident in (admins["id"], admins["token"], editors["id"]):
        assert_error(api.get(f"/api/v3/tokens/{ident}", session=m.viewer.session), 404)
    # Editor: their own, with its string; not the admin's.
    editor_list = assert_ok(api.get("/api/v3/tokens", token=m.editor.token))["results"]
    ids = {t["id"]: t for t in editor_list}
    assert editors["id"] in ids and ids[editors["id"]]["token"] == editors["token"]
    assert admins["id"] not in ids and admins["token"] not in json.dumps(editor_list)
    assert_error(api.get(f"/api/v3/tokens/{admins['id']}", token=m.editor.token), 404)
    # Admin: everyone's.
    admin_list = {t["id"]: t for t in assert_ok(api.get("/api/v3/tokens", token=m.admin.token))["results"]}
    assert admin_list[editors["id"]]["token"] == editors["token"] and admins["id"] in admin_list
    assert assert_ok(api.get(f"/api/v3/tokens/{editors['id']}", token=m.admin.token))["token"] == editors["token"]
    # Second organisation: nothing.
    assert_error(api.get(f"/api/v3/tokens/{admins['id']}", token=m.other.token), 404)
    assert all(t["id"] != admins["id"] for t in assert_ok(api.get("/api/v3/tokens", token=m.other.token))["results"])
    # Anonymous and API tokens: not this API.
    assert_error(api.get("/api/v3/tokens"), 401)
    assert_error(api.get("/api/v3/tokens", token=admins["token"]), 403, "user_token_required")


def test_only_creator_or_admin_change_or_delete_a_token(api, m, dw):
    admins = token_of(api, m.admin, ["public.e2e_places"])
    body = {"grants": [{"connection_name": "carto_dw", "source": "*"}]}
    assert_error(api.patch(f"/api/v3/tokens/{admins['id']}", token=m.editor.token, json_body=body), 404)
    assert_error(api.delete(f"/api/v3/tokens/{admins['id']}", token=m.editor.token), 404)
    assert_error(api.delete(f"/api/v3/tokens/{admins['id']}", session=m.viewer.session), 403, "role_forbidden")
    assert_ok(api.sql("SELECT count(*) AS n FROM public.e2e_places", admins["token"]))
    # A map's hidden token: its owner (the admin here) or an admin only.
    mp = assert_ok(api.post(MAPS, token=m.admin.token, json_body={"title": h.unique("iso"), "privacy": "organization",
                                                                "datasets": [dataset()]}), 201)
    map_token = assert_ok(api.get(PUBLIC.format(mp["id"]), token=m.admin.token))["token"]
    assert_error(api.patch(f"/api/v3/tokens/{map_token}", token=m.editor.token, json_body=body), 404)
    assert_error(api.delete(f"/api/v3/tokens/{map_token}", token=m.editor.token), 404)
    # The admin may not give a map's token `*` either (it is handed to everyone who opens the map).
    assert_error(api.patch(f"/api/v3/tokens/{map_token}", token=m.admin.token, json_body=body), 400,
                 "invalid_token_definition")
    # Rightful: the editor changes and deletes their own; the admin deletes anyone's.
    mine = token_of(api, m.editor, ["public.e2e_places"])
    assert_ok(api.patch(f"/api/v3/tokens/{mine['id']}", token=m.editor.token, json_body={"referers": []}))
    assert api.delete(f"/api/v3/tokens/{mine['id']}", token=m.editor.token).status == 204
    assert api.delete(f"/api/v3/tokens/{admins['id']}", token=m.admin.token).status == 204
    other = token_of(api, m.editor, ["public.e2e_places"])
    assert api.delete(f"/api/v3/tokens/{other['id']}", token=m.admin.token).status == 204


def test_only_owner_or_admin_delete_an_oauth_client(api, m):
    assert_error(api.delete(f"/api/v3/oauth-clients/{m.admin.client_id}", token=m.editor.token), 404)
    assert_ok(api.get("/api/v3/me", token=m.admin.token))
    _, spare, _ = h.oauth_token(api, m.editor.session, "iso-spare")
    assert api.delete(f"/api/v3/oauth-clients/{spare}", token=m.admin.token).status == 204
    _, own, _ = h.oauth_token(api, m.editor.session, "iso-own")
    assert api.delete(f"/api/v3/oauth-clients/{own}", token=m.editor.token).status == 204


# ---- case 4: CSRF on every method, login CSRF, open redirect -----------------------------------------

def test_cookie_reads_need_the_csrf_proof(api, m, dw):
    s = m.admin.session
    # A query of its own: a cached answer for this cookie would be served without asking the API.
    q = f"/api/v3/sql/carto_dw/query?q=SELECT%201%20AS%20a%20--%20{h.unique('csrf')}"
    # A cross-site link or <img>: the cookie rides along, the proof does not.
    for headers in ({}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": "https://evil.example"}, {"X-CSRF-Token": "wrong"}):
        assert_error(api.get(q, session=s, csrf=False, headers=headers), 403, "csrf_failed")
        assert_error(api.get("/api/v3/tokens", session=s, csrf=False, headers=headers), 403, "csrf_failed")
    # Rightful: the header, or the browser's own same-origin signal, on reads.
    assert assert_ok(api.get(q, session=s))["rows"] == [{"a": 1}]
    assert assert_ok(api.get(q, session=s, csrf=False, headers={"Sec-Fetch-Site": "same-origin"}))["rows"] == [{"a": 1}]
    host = f"127.0.0.1:{m.stack.http_port}"
    assert_ok(api.get("/api/v3/me", session=s, csrf=False, headers={"Origin": f"http://{host}", "Host": host}))
    # Writes always need the token itself.
    r = api.post("/api/v3/tokens", session=s, csrf=False, headers={"Sec-Fetch-Site": "same-origin"},
                 json_body={"grants": []})
    assert_error(r, 403, "csrf_failed")
    # Bearer credentials are not ambient: no CSRF proof needed.
    assert_ok(api.get(q, token=m.admin.token))


def test_login_csrf_and_open_redirect(api, m):
    body = {"email": m.admin.email, "password": "wrong-Password-0000"}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        r = api.post("/api/v3/auth/login", headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                     data="email=x%40example.com&password=y")
        assert_error(r, 403, "csrf_failed")
        assert r.header("Set-Cookie") is None
        assert_error(api.post("/api/v3/auth/login", headers=headers, json_body=body), 403, "csrf_failed")
    # Sign-ins of the fixture: the attack went to "/", the deep link was kept.
    assert m.viewer.extra["next"] == "/"
    assert m.editor.extra["next"] == "/#/maps?tab=mine"


# ---- case 6: verbatim grants compare exactly ------------------------------------------------------

def test_verbatim_grant_with_comment_cannot_be_folded(api, m, dw):
    granted = "SELECT id FROM public.e2e_secret\n-- nothing from this table\nWHERE id < 0"
    t = token_of(api, m.admin, [granted, "public.e2e_places"])
    assert assert_ok(api.sql(granted, t["token"]))["rows"] == []
    assert assert_ok(api.sql(granted + " ;\n", t["token"]))["rows"] == []
    folded = "SELECT id FROM public.e2e_secret -- nothing from this table WHERE id < 0"
    r = api.sql(folded, t["token"])
    assert_error(r, 403, "source_not_granted")
    assert "the-secret-value" not in r.text
    assert_error(api.sql(granted.replace("\n", "\r\n"), t["token"]), 403, "source_not_granted")


# ---- case 7: jobs are per owner; map tokens never see them ------------------------------------------

def test_job_listings_are_per_owner_and_not_for_map_tokens(api, m, dw):
    secret_sql = f"SELECT 1 AS admin_job -- {h.unique('adminsql')}"
    admin_job = assert_ok(api.post(JOB, token=m.admin.token, json_body={"query": secret_sql}), 201)["jobId"]
    editor_job = assert_ok(api.post(JOB, token=m.editor.token, json_body={"query": "SELECT 2 AS editor_job"}), 201)["jobId"]
    mp = assert_ok(api.post(MAPS, token=m.admin.token, json_body={"title": h.unique("iso"), "privacy": "public",
                                                                "datasets": [dataset()]}), 201)
    map_token = assert_ok(api.get(PUBLIC.format(mp["id"])))["token"]
    r = api.get(JOBS, token=map_token)
    assert_error(r, 403, "map_token_forbidden")
    assert secret_sql not in r.text
    assert_error(api.get(f"{JOB}/{admin_job}", token=map_token), 403, "map_token_forbidden")
    assert_error(api.post(JOB, token=map_token, json_body={"query": "SELECT 1"}), 403, "map_token_forbidden")
    # The editor lists and reads only their own jobs; the admin sees everyone's.
    editor_ids = [j["jobId"] for j in assert_ok(api.get(JOBS, token=m.editor.token))["results"]]
    assert editor_job in editor_ids and admin_job not in editor_ids
    assert_error(api.get(f"{JOB}/{admin_job}", token=m.editor.token), 404, "job_not_found")
    admin_ids = [j["jobId"] for j in assert_ok(api.get(JOBS, token=m.admin.token))["results"]]
    assert {admin_job, editor_job} <= set(admin_ids)
    # Another organisation sees neither.
    other_ids = [j["jobId"] for j in assert_ok(api.get(JOBS, token=m.other.token))["results"]]
    assert admin_job not in other_ids and editor_job not in other_ids
    assert_error(api.get(JOBS), 401)


# ---- case 9: no `*` map datasets; map tokens read only ------------------------------------------------

def test_map_datasets_cannot_be_wildcard(api, m, dw):
    for source in ("*", " * "):
        assert_error(api.post(MAPS, token=m.admin.token, json_body={"title": "w", "datasets": [dataset(source)]}),
                     400, "invalid_map")
    mp = assert_ok(api.post(MAPS, token=m.admin.token, json_body={"title": h.unique("iso"), "privacy": "public",
                                                                "datasets": [dataset()]}), 201)
    assert_error(api.patch(f"{MAPS}/{mp['id']}", token=m.admin.token,
                           json_body={"datasets": [dataset("*", id="d2")]}), 400, "invalid_map")
    token = assert_ok(api.get(PUBLIC.format(mp["id"])))["token"]
    before = m.stack.psql("SELECT count(*) FROM public.e2e_writable", dbname="carto_dw", user="carto_dw")
    for sql in ("INSERT INTO public.e2e_writable VALUES (9, 'anon')", "DROP TABLE public.e2e_writable",
                "SELECT set_config('statement_timeout', '0', false)"):
        r = api.sql(sql, token, method="POST")
        assert r.status in (400, 403), r
        assert_error(r, r.status)
    assert m.stack.psql("SELECT count(*) FROM public.e2e_writable", dbname="carto_dw", user="carto_dw") == before
    assert_ok(api.sql("SELECT count(*) AS n FROM public.e2e_places", token))  # what the map shows still works


# ---- case 10: token checks before hashing --------------------------------------------------------------

def test_invalid_invitation_and_reset_tokens_are_refused(api):
    for path, code in (("/api/v3/auth/invitations/accept", "invalid_invitation"),
                       ("/api/v3/auth/password-reset/confirm", "invalid_reset_token")):
        for _ in range(3):
            assert_error(api.post(path, json_body={"token": os.urandom(16).hex(), "password": PASSWORD}), 400, code)


def test_token_redemptions_are_rate_limited_per_address(limits_stack):
    """On the extra stack (this uses up its budget): nginx bounds how often one address may try."""
    lapi = h.Api(limits_stack)
    statuses = []
    for _ in range(45):
        r = lapi.post("/api/v3/auth/invitations/accept", json_body={"token": os.urandom(16).hex(), "password": PASSWORD})
        statuses.append(r.status)
        if r.status == 429:
            break
    assert statuses[0] == 400 and statuses[-1] == 429, statuses
    assert_error(r, 429, from_app=False)


# ---- case 11: private maps are the owner's and the admins' ------------------------------------------

def test_private_organization_and_public_maps(api, m, dw):
    mine = assert_ok(api.post(MAPS, session=m.editor.session, json_body={"title": h.unique("iso"), "datasets": [dataset()]}), 201)
    assert mine["privacy"] == "private"
    path, pub = f"{MAPS}/{mine['id']}", PUBLIC.format(mine["id"])
    # A viewer (or another editor) of the same organisation does not see it anywhere.
    assert all(x["id"] != mine["id"] for x in assert_ok(api.get(MAPS, session=m.viewer.session))["data"])
    assert_error(api.get(path, session=m.viewer.session), 404, "map_not_found")
    assert_error(api.get(pub, session=m.viewer.session), 404, "map_not_found")
    assert_error(api.get(path, token=m.other.token), 404, "map_not_found")
    assert_error(api.get(pub), 404, "map_not_found")
    # Its owner and the admins do.
    assert_ok(api.get(path, session=m.editor.session))
    assert any(x["id"] == mine["id"] for x in assert_ok(api.get(MAPS, token=m.admin.token))["data"])
    assert_ok(api.get(pub, token=m.admin.token))
    # Organisation level: every member reads it, viewers still cannot change it.
    assert assert_ok(api.patch(path, session=m.editor.session, json_body={"privacy": "organization"}))["privacy"] == "organization"
    assert_ok(api.get(path, session=m.viewer.session))
    assert_ok(api.get(pub, session=m.viewer.session))
    assert_error(api.patch(path, session=m.viewer.session, json_body={"title": "x"}), 403, "role_forbidden")
    assert_error(api.get(pub), 404, "map_not_found")
    assert_error(api.get(pub, token=m.other.token), 404, "map_not_found")
    # Public: anyone.
    assert_ok(api.patch(path, session=m.editor.session, json_body={"privacy": "public"}))
    assert_ok(api.get(pub))
    assert_error(api.patch(path, session=m.editor.session, json_body={"privacy": "friends"}), 400, "invalid_map")


# ---- case 12: scoped tokens cannot probe the catalog --------------------------------------------------

def test_scoped_token_cannot_probe_existence(api, m, dw):
    t = token_of(api, m.admin, ["public.e2e_places"])["token"]

    def refusal(sql):
        r = api.sql(sql, t)
        body = assert_error(r, 403, "source_not_granted")
        return body["error"]

    # Existing and missing objects read the same.
    pairs = [
        ("SELECT 'public.e2e_secret'::regclass", "SELECT 'public.no_such_table'::regclass"),
        ("SELECT 'carto_dw'::regrole", "SELECT 'no_such_role'::regrole"),
        ("SELECT * FROM public.e2e_secret", "SELECT * FROM public.no_such_table"),
        ("SELECT * FROM e2e_s.t1", "SELECT * FROM no_such_schema.t1"),
        ("SELECT no_such_column FROM public.e2e_secret", "SELECT no_such_column FROM public.no_such_table"),
        ("SELECT postgis_constraint_srid('public', 'e2e_places', 'geom')",
         "SELECT postgis_constraint_srid('public', 'no_such_table', 'geom')"),
    ]
    for existing, missing in pairs:
        assert refusal(existing) == refusal(missing), (existing, missing)
    assert_ok(api.sql("SELECT name FROM public.e2e_places ORDER BY cartodb_id LIMIT 1", t))


# ---- anonymous -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,path", [("GET", "/api/v3/tokens"), ("GET", MAPS), ("GET", JOBS), ("GET", "/api/v3/users"),
                                         ("GET", "/api/v3/sql/carto_dw/query?q=SELECT%201")])
def test_anonymous_gets_nothing(api, method, path):
    assert_error(api.request(method, path), 401)


# ---- upgrade of an existing install (migration 011) ----------------------------------------------------

def test_upgrade_revokes_and_reclassifies(stack):
    """A database at the previous schema with legacy rows, migrated by `tessera migrate`."""
    from conftest import BIN

    db = "upgrade_" + os.urandom(4).hex()
    stack.psql(f"CREATE DATABASE {db} OWNER tessera")
    env = {**os.environ, **stack.env, "TESSERA_DATABASE_URL": stack.dsn(db, "tessera")}

    def migrate():
        r = subprocess.run([str(BIN / "tessera"), "migrate"], capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def sql(text):
        return stack.psql(text, dbname=db, user="tessera")

    try:
        migrate()
        # Back to the state before 011: its constraint, its rows.
        sql("DELETE FROM schema_migrations WHERE version = 11; "
            "ALTER TABLE maps DROP CONSTRAINT maps_privacy_check; "
            "ALTER TABLE maps ADD CONSTRAINT maps_privacy_check CHECK (privacy IN ('private', 'public'))")
        sql("""
            INSERT INTO accounts (id, name) VALUES ('11111111-1111-1111-1111-111111111111', 'Legacy');
            INSERT INTO users (id, account_id, email, password_hash, role) VALUES
              ('22222222-2222-2222-2222-222222222222', '11111111-1111-1111-1111-111111111111', 'stays@example.com', 'x', 'admin');
            -- a removed user's token and OAuth client, and a current member's token
            INSERT INTO api_tokens (id, account_id, created_by, grants) VALUES
              ('33333333-3333-3333-3333-333333333333', '11111111-1111-1111-1111-111111111111',
               '99999999-9999-9999-9999-999999999999', '[{"connection_name": "carto_dw", "source": "*"}]'),
              ('44444444-4444-4444-4444-444444444444', '11111111-1111-1111-1111-111111111111',
               '22222222-2222-2222-2222-222222222222', '[{"connection_name": "carto_dw", "source": "*"}]'),
              ('55555555-5555-5555-5555-555555555555', '11111111-1111-1111-1111-111111111111',
               '99999999-9999-9999-9999-999999999999',
               '[{"connection_name": "carto_dw", "source": "*"}, {"connection_name": "carto_dw", "source": "public.t"}]');
            INSERT INTO oauth_clients (account_id, user_id, client_id, secret_hash) VALUES
              ('11111111-1111-1111-1111-111111111111', '99999999-9999-9999-9999-999999999999', 'gone-client', '\\x00');
            -- an old "Private" (organisation-visible) map, and a public map with a * dataset whose
            -- token (created by the removed user) belongs to the map
            INSERT INTO maps (id, account_id, owner_id, title, privacy, kepler_map_config, datasets, token_id) VALUES
              ('oldprivate', '11111111-1111-1111-1111-111111111111', '22222222-2222-2222-2222-222222222222', 'p',
               'private', '{}', '[]', NULL),
              ('wildcard1', '11111111-1111-1111-1111-111111111111', '22222222-2222-2222-2222-222222222222', 'w',
               'public', '{}', '[{"connectionName": "carto_dw", "source": "*"}]', '55555555-5555-5555-5555-555555555555');
        """)
        out = migrate()
        assert "isolation upgrade:" in out, out
        assert "1 API token(s) and 1 OAuth client(s) of removed users revoked" in out, out
        assert "1 \"Private\" map(s) are now \"organization\"" in out and "1 map(s) with a * dataset" in out, out
        assert sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM api_tokens") == \
            "44444444-4444-4444-4444-444444444444,55555555-5555-5555-5555-555555555555"
        assert sql("SELECT count(*) FROM oauth_clients") == "0"
        assert sql("SELECT privacy FROM maps WHERE id = 'oldprivate'") == "organization"
        assert sql("SELECT privacy FROM maps WHERE id = 'wildcard1'") == "organization"
        assert sql("SELECT grants::text FROM api_tokens WHERE id = '55555555-5555-5555-5555-555555555555'") == \
            '[{"source": "public.t", "connection_name": "carto_dw"}]'
        # A current member's own * token is theirs to keep.
        assert "*" in sql("SELECT grants::text FROM api_tokens WHERE id = '44444444-4444-4444-4444-444444444444'")
        # New maps may be private for real now; a second run changes nothing.
        assert "schema is up to date" in migrate()
    finally:
        stack.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
