"""Scoped-token escapes (reliability.md A2, A3) and injection attempts (B8): through `q`, through
`queryParameters`, through the connection path segment and through grant source strings. A refusal may be
403 (or 400 for what PostgreSQL cannot parse) but never 200, and the warehouse is unchanged afterwards."""

from __future__ import annotations

import subprocess
import time

import pytest

from helpers import assert_error, assert_ok, unique

SECRET = "the-secret-value"


@pytest.fixture(scope="module")
def places_token(make_token):
    return make_token(["public.e2e_places"])["token"]


ESCAPES = [
    # other tables, however they are reached
    "SELECT * FROM e2e_places p JOIN e2e_secret s ON s.id = p.cartodb_id",
    "SELECT (SELECT secret FROM e2e_secret LIMIT 1) AS s FROM e2e_places",
    "SELECT * FROM e2e_places WHERE name IN (SELECT secret FROM e2e_secret)",
    "SELECT name FROM e2e_places UNION ALL SELECT secret FROM e2e_secret",
    "WITH s AS (SELECT * FROM e2e_secret) SELECT * FROM e2e_places, s",
    "SELECT array(SELECT secret FROM e2e_secret)",
    "SELECT * FROM e2e_places, LATERAL (SELECT secret FROM e2e_secret) x",
    "SELECT * FROM e2e_s.t1",
    # catalogs
    "SELECT * FROM pg_catalog.pg_tables",
    "SELECT * FROM information_schema.tables",
    "SELECT tablename FROM pg_tables",
    "SELECT * FROM pg_stat_activity",
    "SELECT usename FROM pg_user",
    "SELECT rolname, rolpassword FROM pg_authid",
    "SELECT * FROM pg_settings",
    # set-returning functions in FROM
    "SELECT * FROM generate_series(1, 3)",
    "SELECT * FROM unnest(ARRAY[1, 2])",
    "SELECT * FROM pg_ls_dir('.')",
    "SELECT * FROM json_each('{\"a\": 1}')",
    # server files and large objects
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('/etc/passwd')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_export(1, '/tmp/e2e-lo')",
    # writes and DDL
    "INSERT INTO e2e_places (cartodb_id, name) VALUES (99, 'x')",
    "UPDATE e2e_places SET population = 0",
    "DELETE FROM e2e_places",
    "WITH d AS (DELETE FROM e2e_places RETURNING *) SELECT * FROM d",
    "SELECT * FROM e2e_places FOR UPDATE",
    "CREATE TABLE e2e_evil (a int)",
    "CREATE TABLE e2e_evil AS SELECT * FROM e2e_places",
    "SELECT * INTO e2e_evil FROM e2e_places",
    "DROP TABLE e2e_places",
    "TRUNCATE e2e_places",
    "ALTER TABLE e2e_places ADD COLUMN x int",
    "GRANT ALL ON e2e_secret TO PUBLIC",
    "COPY e2e_places TO STDOUT",
    "COPY e2e_secret TO '/tmp/e2e-secret.csv'",
    "COPY e2e_places FROM STDIN",
    "SET ROLE postgres",
    "SET statement_timeout = 0",
    "RESET ALL",
    "DO $$ BEGIN DELETE FROM e2e_places; END $$",
    "CALL nothing()",
    "PREPARE p AS SELECT * FROM e2e_secret",
    "EXPLAIN ANALYZE DELETE FROM e2e_places",
    "LISTEN x",
    "BEGIN",
    "COMMIT",
    "SELECT 1; DELETE FROM e2e_places",
    "SELECT * FROM e2e_places; SELECT * FROM e2e_secret",
    "CREATE EXTENSION dblink",
    "SELECT dblink('dbname=carto_dw', 'SELECT secret FROM e2e_secret')",
]


@pytest.mark.parametrize("q", ESCAPES)
def test_scoped_token_escape_refused(api, dw, places_token, q):
    before = dw.fingerprint()
    for method in ("GET", "POST"):
        r = api.sql(q, places_token, method=method)
        assert r.status in (400, 403, 404), f"{q!r} -> {r!r}"
        doc = assert_error(r, r.status)
        assert SECRET not in r.text, doc
    assert dw.fingerprint() == before
    assert dw.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'e2e_evil'") == "0"


def test_srf_in_select_list_refused(api, dw, places_token):
    for q in ("SELECT generate_series(1, 3)", "SELECT unnest(ARRAY[1, 2])",
              "SELECT (pg_stat_get_activity(NULL)).query"):
        r = api.sql(q, places_token)
        assert r.status == 403, f"{q!r} -> {r!r}"


def test_xml_query_functions_refused(api, dw, places_token):
    for q in ("SELECT query_to_xml('SELECT * FROM e2e_secret', true, false, '')",
              "SELECT table_to_xml('e2e_secret', true, false, '')",
              "SELECT name, query_to_xml('SELECT secret FROM e2e_secret', true, false, '') FROM e2e_places",
              "SELECT database_to_xml(true, false, '')"):
        r = api.sql(q, places_token)
        assert SECRET not in r.text, f"{q!r} leaked the secret table: {r.text[:200]}"
        assert r.status == 403, f"{q!r} -> {r!r}"


def test_scoped_request_leaves_no_session_state(api, dw, stack, places_token):
    key = 424242
    r = api.sql(f"SELECT pg_advisory_lock({key}) FROM e2e_places LIMIT 1", places_token)
    try:
        assert r.status in (200, 400, 403), r
        held = stack.psql(f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {key}",
                          dbname="carto_dw")
        assert held == "0", "the advisory lock outlived the request"
    finally:
        # Free it whatever happened: terminate the backend that holds it (the pool replaces it).
        stack.psql("SELECT pg_terminate_backend(pid) FROM pg_locks "
                   f"WHERE locktype = 'advisory' AND objid = {key}", dbname="carto_dw")


def test_scoped_token_cannot_kill_other_sessions(api, dw, stack, places_token):
    victim = subprocess.Popen(
        ["/usr/lib/postgresql/15/bin/psql", "-X", "-q", "-d", stack.dsn("carto_dw", "carto_dw"),
         "-c", "SELECT pg_sleep(20) AS e2e_victim"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        pid = ""
        while not pid and time.monotonic() < deadline:
            pid = stack.psql("SELECT pid FROM pg_stat_activity WHERE query LIKE '%e2e_victim%' "
                             "AND pid <> pg_backend_pid() AND query NOT LIKE '%pg_stat_activity%'")
            time.sleep(0.05)
        assert pid, "victim session did not start"
        r = api.sql("SELECT pg_terminate_backend($1::int) AS killed", places_token, query_parameters=[int(pid)])
        time.sleep(0.3)
        assert victim.poll() is None, f"a table-scoped token terminated another session: {r!r}"
        assert r.status == 403, r
    finally:
        victim.kill()
        victim.wait()


def test_writes_with_table_token_are_403(api, dw, places_token):
    before = dw.fingerprint()
    for q in ("INSERT INTO e2e_places (cartodb_id, name) VALUES (99, 'x')",
              "UPDATE e2e_places SET population = 0", "DELETE FROM e2e_places"):
        assert_error(api.sql(q, places_token, method="POST"), 403)
    assert dw.fingerprint() == before


def test_granted_sql_source_cannot_be_extended(api, dw, make_token):
    granted = "SELECT name FROM e2e_places WHERE cartodb_id = 1"
    token = make_token([granted])["token"]
    assert assert_ok(api.sql(granted, token))["rows"] == [{"name": "Alpha"}]
    for q in (granted + "; DELETE FROM e2e_places", granted + " UNION SELECT secret FROM e2e_secret",
              granted + " --", granted.replace("= 1", "= 1 OR true")):
        r = api.sql(q, token)
        assert r.status in (400, 403), (q, r)
        assert SECRET not in r.text


# ---- queryParameters ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "1; DROP TABLE e2e_secret",
    "' OR '1'='1",
    "Alpha' OR 1=1 --",
    "\\' OR 1=1 --",
    "Alpha’ OR 1=1",
    "$1",
    "\"e2e_secret\"",
    ")) UNION SELECT secret FROM e2e_secret --",
])
def test_query_parameters_stay_values(api, dw, full_token, places_token, value):
    before = dw.fingerprint()
    q = "SELECT cartodb_id, $1::text AS echoed FROM e2e_places WHERE name = $1"
    for token in (full_token, places_token):
        for method in ("GET", "POST"):
            doc = assert_ok(api.sql(q, token, method=method, query_parameters=[value]))
            assert doc["rows"] == [], "the value matched nothing: it was compared as a string"
        doc = assert_ok(api.sql("SELECT $1::text AS v", token, method="POST", query_parameters=[value]))
        assert doc["rows"] == [{"v": value}]
    assert dw.fingerprint() == before


def test_query_parameters_validation(api, full_token):
    assert_error(api.sql("SELECT $1::int AS a", full_token, query_parameters={"a": 1}), 400, "invalid_parameter")
    assert_error(api.sql("SELECT $1::int AS a", full_token, extra={"queryParameters": "[1,"}), 400, "invalid_parameter")
    assert_error(api.sql("SELECT $1::int AS a", full_token, method="POST", query_parameters=["x\u0000y"]), 400)
    r = api.sql("SELECT $1::int AS a", full_token, query_parameters=["not a number"])
    assert_error(r, 400, "invalid_data")


def test_query_parameters_count_mismatch_is_400(api, full_token):
    assert_error(api.sql("SELECT $1::int AS a, $2::int AS b", full_token, query_parameters=[1]), 400)
    assert_error(api.sql("SELECT $1::int AS a", full_token, query_parameters=[1, 2]), 400)


# ---- the connection path segment ----------------------------------------------------------------


@pytest.mark.parametrize("segment", [
    "carto_dw'--", "carto_dw%27--", "carto_dw%27%20OR%20%271%27%3D%271", "carto_dw;DROP",
    "CARTO_DW", "carto_dw%20", "%ff", "carto_dw%2F..%2Fx", "%2e%2e", "..", "a" * 300,
])
def test_connection_segment_injection(api, full_token, dw, segment):
    before = dw.fingerprint()
    r = api.get(f"/api/v3/sql/{segment}/query?q=SELECT%201", token=full_token)
    assert r.status in (400, 403, 404), (segment, r)
    assert_error(r, r.status)
    assert dw.fingerprint() == before


@pytest.mark.parametrize("segment", ["carto_dw%00", "%00"])
def test_connection_segment_nul(api, full_token, segment):
    # nginx refuses it (as HTML - see test_bad_input.py::test_parse_stage_refusals_are_json); never a 200.
    assert api.get(f"/api/v3/sql/{segment}/query?q=SELECT%201", token=full_token).status == 400


def test_nul_in_q_refused(api, full_token):
    assert_error(api.sql("SELECT 1\u0000; DROP TABLE e2e_secret", full_token, method="POST"), 400)
    r = api.get("/api/v3/sql/carto_dw/query?q=SELECT%201%00", token=full_token)
    assert_error(r, 400)


# ---- grant source strings --------------------------------------------------------------------


@pytest.mark.parametrize("source", [
    "e2e_places; DROP TABLE e2e_secret",
    "e2e_places' OR '1'='1",
    "\"e2e_places\"\"; DROP TABLE e2e_secret; --\"",
    "public.e2e_places,public.e2e_secret",
    "public.*; SELECT 1",
    "e2e_secret -- public.e2e_places",
])
def test_grant_source_strings_are_inert(api, dw, make_token, source):
    before = dw.fingerprint()
    token = make_token([source])["token"]
    for q in ("SELECT * FROM e2e_secret", "SELECT secret FROM public.e2e_secret", "SELECT * FROM e2e_s.t1"):
        r = api.sql(q, token)
        assert r.status in (400, 403), (source, q, r)
        assert SECRET not in r.text
    assert dw.fingerprint() == before


def test_token_grants_do_not_survive_connection_deletion(api, admin, make_token, stack, dw, dw_user):
    name = unique("e2e_gone")
    body = {"name": name, **dw_user}
    assert api.post("/api/v3/connections", token=admin.token, json_body=body).status == 201
    token = make_token([(name, "*")])
    assert_ok(api.sql("SELECT 1 AS a", token["token"], conn=name))
    assert api.delete(f"/api/v3/connections/{name}", token=admin.token).status == 204
    # A new connection of the same name must not inherit the old grants.
    assert api.post("/api/v3/connections", token=admin.token, json_body=body).status == 201
    time.sleep(4.5)  # the token lookup may be cached for up to 4 s
    r = api.sql("SELECT 1 AS a", token["token"], conn=name)
    assert_error(r, 403, "source_not_granted")
    api.delete(f"/api/v3/connections/{name}", token=admin.token)
