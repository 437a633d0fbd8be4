"""Issue 11, cases 5 and 8, against the real stack: pooled warehouse sessions cannot carry one principal's
writes or session state to another, read-only principals cannot watch or kill other sessions, and a
public map's token cannot hold the warehouse pool.

Where the policies live: the pool (Warehouses.withSession / PGPool) chooses read-only from the principal
and resets every connection at check-in; the per-token cap and statement timeout are applied there too.
No route below has code of its own for any of it."""

from __future__ import annotations

import json
import os
import threading

import pytest

import helpers as h
from helpers import assert_error, assert_ok, login

CONN = "carto_dw"
CLIENT = {"v": "3.4", "client": "deck-gl-carto", "spatialDataColumn": "geom", "spatialDataType": "geo",
          "tag-mapId": "iso"}
PASSWORD = "iso-Password-5521"
SEQ = "public.e2e_iso_seq"
VICTIM = "public.e2e_iso_victim"
OTHER_ROLE = "e2e_iso_other"


@pytest.fixture(scope="module")
def fixture_tables(stack, dw):
    h.warehouse(stack, f"""
        CREATE SEQUENCE IF NOT EXISTS {SEQ};
        SELECT setval('{SEQ}', 7);
        CREATE TABLE IF NOT EXISTS {VICTIM} (id int PRIMARY KEY, geom geometry(Point, 4326));
        INSERT INTO {VICTIM} VALUES (1, ST_SetSRID(ST_MakePoint(1, 1), 4326)) ON CONFLICT DO NOTHING;
        """)
    # A role the warehouse role may switch to: what set_config('role', ...) would leave behind.
    stack.psql(f"DO $$ BEGIN CREATE ROLE {OTHER_ROLE} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$; "
               f"GRANT {OTHER_ROLE} TO carto_dw", dbname="carto_dw")


@pytest.fixture(scope="module")
def viewer(api, admin, fixture_tables):
    email = f"iso-viewer-{os.urandom(3).hex()}@example.com"
    inv = assert_ok(api.post("/api/v3/invitations", token=admin.token, json_body={"email": email, "role": "viewer"}), 201)
    assert_ok(api.post("/api/v3/auth/invitations/accept", json_body={"token": inv["token"], "password": PASSWORD}), 201)
    return login(api, email, PASSWORD)


def untouched(stack) -> tuple[str, str]:
    return (h.warehouse(stack, f"SELECT last_value FROM {SEQ}").strip(),
            h.warehouse(stack, f"SELECT to_regclass('{VICTIM}') IS NOT NULL").strip())


WRITES = [
    f"SELECT 1 AS n, setval('{SEQ}', 999) AS v, ST_SetSRID(ST_MakePoint(0, 0), 4326) AS geom",
    f"SELECT 1 AS n, DropGeometryTable('public', 'e2e_iso_victim') AS v, ST_SetSRID(ST_MakePoint(0, 0), 4326) AS geom",
]


def local(stack, url: str) -> str:
    assert url.startswith(stack.base_url + "/api/v3/"), url
    return url[len(stack.base_url):]


# --------------------------------------------------------------------------------------------
# case 5: viewers cannot write through Maps, TileJSON, tiles, stats or models


@pytest.mark.parametrize("q", WRITES, ids=["setval", "DropGeometryTable"])
def test_viewer_writes_are_refused_on_every_maps_path(api, stack, viewer, q):
    before = untouched(stack)
    assert before == ("7", "t")
    refused = []
    # The handshake (POST with the CSRF token: read-only comes from the viewer's role, not from GET).
    r = api.post(f"/api/v3/maps/{CONN}/query", session=viewer, json_body={**CLIENT, "q": q})
    if r.status == 200:
        # The handshake itself only describes the query; TileJSON and the tile run it.
        tj_resp = api.get(local(stack, r.json()["tilejson"]["url"][0]), params=CLIENT, session=viewer)
        if tj_resp.status == 200:
            tile = api.get(local(stack, tj_resp.json()["tiles"][0]).replace("{z}", "0").replace("{x}", "0")
                           .replace("{y}", "0"), session=viewer)
            refused.append(assert_error(tile, 403, "read_only"))
        else:
            refused.append(assert_error(tj_resp, 403, "read_only"))
    else:
        refused.append(assert_error(r, 403, "read_only"))
    stats = api.post(f"/api/v3/stats/{CONN}/n", session=viewer, json_body={**CLIENT, "q": q})
    refused.append(assert_error(stats, 403, "read_only"))
    model = api.post(f"/api/v3/sql/{CONN}/model/formula", session=viewer, json_body={
        "type": "query", "client": "deck-gl-carto", "source": q, "params": {"column": "n", "operation": "sum"},
        "queryParameters": "", "filters": {}, "filtersLogicalOperator": "and", "spatialDataType": "geo",
        "spatialDataColumn": "geom"})
    refused.append(assert_error(model, 403, "read_only"))
    assert len(refused) == 3
    assert untouched(stack) == before, "no write reached the warehouse"


def test_cookie_get_is_read_only_even_for_an_admin(api, admin, dw):
    """A cross-site link can trigger a cookie-authenticated GET: it never writes. The same statement
    POSTed with the CSRF token does."""
    table = h.unique("e2e_iso_cookie")
    assert_error(api.sql(f"CREATE TABLE {table} (id int)", session=admin.session), 403, "read_only")
    assert dw.sql(f"SELECT to_regclass('public.{table}') IS NULL") == "t"
    assert_ok(api.sql(f"CREATE TABLE {table} (id int)", session=admin.session, method="POST"))
    assert_ok(api.sql(f"DROP TABLE {table}", session=admin.session, method="POST"))


def test_viewer_table_source_tiles_and_tilejson_still_work(api, stack, viewer):
    """Read-only is not 'refused': the same paths answer reads for a viewer."""
    r = assert_ok(api.get(f"/api/v3/maps/{CONN}/table", params={**CLIENT, "name": VICTIM}, session=viewer))
    tj = assert_ok(api.get(local(stack, r["tilejson"]["url"][0]), params=CLIENT, session=viewer))
    tile = api.get(local(stack, tj["tiles"][0]).replace("{z}", "0").replace("{x}", "0").replace("{y}", "0"),
                   session=viewer)
    assert tile.status == 200, tile


def stats_values(api, token_or_session, q: str, attribute: str) -> set[str]:
    kw = {"token": token_or_session} if isinstance(token_or_session, str) else {"session": token_or_session}
    body = assert_ok(api.post(f"/api/v3/stats/{CONN}/{attribute}", json_body={**CLIENT, "q": q}, **kw))
    return {c["category"] for c in body["categories"]}


def test_set_config_does_not_leak_into_the_next_request(api, stack, viewer, admin):
    """set_config(..., false) by a viewer (role, statement_timeout) never reaches the next request on the
    same maps-api pool; an admin's requests keep running as the warehouse role with the configured timeout."""
    poison = (f"SELECT set_config('role', '{OTHER_ROLE}', false) AS r, "
              "set_config('statement_timeout', '1', false) AS t, set_config('search_path', 'pg_temp', false) AS p")
    probe = "SELECT current_user::text || ' ' || current_setting('statement_timeout') AS who"
    for _ in range(6):
        poisoned = stats_values(api, viewer, poison, "r")
        assert poisoned == {OTHER_ROLE}, "the viewer's own statement ran (read-only allows set_config)"
        assert stats_values(api, admin.token, probe, "who") == {"carto_dw 1min"}


# What a read-only request may leave on its pooled session, one statement per request as the SQL API runs
# them; the pool's short reset (a ROLLBACK of its READ ONLY transaction plus one statement) must undo each,
# and the full reset must catch a client that ended the pool's transaction (COMMIT, COMMIT AND CHAIN).
RO_POISON = [
    "SELECT pg_advisory_lock(771501) AS l",
    "SET work_mem = '7MB'",
    f"SET ROLE {OTHER_ROLE}",
    "SELECT set_config('search_path', 'pg_temp', false) AS p",
    "PREPARE e2e_ro_poison AS SELECT 1",
    "DECLARE e2e_ro_cursor CURSOR WITH HOLD FOR SELECT 1",
    "LISTEN e2e_ro_channel",
    "COMMIT",
    "COMMIT AND CHAIN",
]
RO_PROBE = ("SELECT current_user::text AS who, current_setting('work_mem') AS work_mem, "
            "current_setting('search_path') AS path, "
            "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())::int AS locks, "
            "(SELECT count(*) FROM pg_prepared_statements WHERE from_sql)::int AS prepared, "
            "(SELECT count(*) FROM pg_cursors WHERE name <> '')::int AS cursors, (SELECT count(*) FROM pg_listening_channels())::int AS listens, "
            "current_setting('transaction_read_only') AS ro")


def test_read_only_request_leaves_nothing_on_its_pooled_session(api, stack, viewer):
    clean = assert_ok(api.sql(RO_PROBE, session=viewer, method="POST"))["rows"][0]
    assert clean["who"] == "carto_dw" and clean["ro"] == "on", clean
    assert (clean["locks"], clean["prepared"], clean["cursors"], clean["listens"]) == (0, 0, 0, 0), clean
    for _ in range(3):
        for q in RO_POISON:
            r = api.sql(q, session=viewer, method="POST")
            assert r.status == 200, (q, r)
            # Each probe likely lands on the connection the poison just used (the idle list is a stack),
            # and every connection it can land on must be clean.
            assert assert_ok(api.sql(RO_PROBE, session=viewer, method="POST"))["rows"][0] == clean, q


# The pool's reset runs prepared statements under reserved names (tessera_reset_*). A client's SQL that removes
# them, or removes one and PREPAREs a SELECT under its name (which would keep the reset from unlocking, or from
# resetting settings), gets its pooled connection closed: what it left cannot reach the next request.
HIJACK_LOCK = 771502


def hijack(name: str) -> str:
    return (f"DO $$ BEGIN PERFORM pg_advisory_lock({HIJACK_LOCK}); PERFORM set_config('work_mem', '7MB', false); "
            f"EXECUTE 'DEALLOCATE {name}'; EXECUTE 'PREPARE {name} AS SELECT 1'; END $$")


def test_a_client_that_replaces_the_resets_statements_loses_its_session(api, stack, viewer, admin):
    for who in ({"token": admin.token}, {"session": viewer}):
        clean = assert_ok(api.sql(RO_PROBE, method="POST", **who))["rows"][0]
        assert clean["work_mem"] != "7MB" and clean["locks"] == 0, clean
        # DO is not available to read-only credentials: a viewer can only remove the statements.
        hijacks = ([hijack("tessera_reset_locks"), hijack("tessera_reset_settings")] if "token" in who else
                   ["DEALLOCATE tessera_reset_check_stamp"]) + ["DEALLOCATE ALL"]
        for q in hijacks:
            r = api.sql(q, method="POST", **who)
            assert r.status == 200, (q, r)
            assert assert_ok(api.sql(RO_PROBE, method="POST", **who))["rows"][0] == clean, q
            # Had the hijacked session stayed in the pool, it would hold the lock still (lock_timeout fails this).
            h.warehouse(stack, f"SET lock_timeout = '60s'; SELECT pg_advisory_lock({HIJACK_LOCK})")


def test_read_only_principals_cannot_watch_or_kill_other_sessions(api, stack, viewer, make_token, admin):
    for q in ("SELECT query FROM pg_stat_activity",
              "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE false",
              "SELECT pg_cancel_backend(0)",
              "SELECT query_to_xml('select query from pg_stat_activity', true, false, '')",
              "DO $$ BEGIN PERFORM pg_terminate_backend(0); END $$"):
        r = api.sql(q, session=viewer)
        assert r.status == 403 and r.json()["code"] in ("function_not_allowed", "statement_not_allowed"), (q, r)
        assert "pg_stat_activity" not in r.text or r.json()["error"]
    # Through a Maps query source too (the handshake describes it first).
    r = api.post(f"/api/v3/maps/{CONN}/query", session=viewer, json_body={
        **CLIENT, "q": "SELECT pid, query, ST_MakePoint(0, 0) AS geom FROM pg_stat_activity"})
    assert_error(r, 403, "function_not_allowed")
    # A scoped token: its grant check refuses the same calls.
    scoped = make_token(["public.e2e_places"], allowed_apis=["sql"])["token"]
    assert api.sql("SELECT pg_cancel_backend(0)", scoped).status == 403
    # A read-write user keeps the ordinary query path.
    assert assert_ok(api.sql("SELECT 1 AS one", admin.token))["rows"] == [{"one": 1}]


# --------------------------------------------------------------------------------------------
# case 8: a public map's token cannot hold the warehouse pool


SLOW = "SELECT 1 AS n, ST_SetSRID(ST_MakePoint(0, 0), 4326) AS geom, pg_sleep(8)::text AS e2e_iso_flood"


@pytest.fixture(scope="module")
def public_map(api, admin, dw):
    datasets = [
        {"id": "slow", "type": "query", "source": SLOW, "connectionName": CONN, "geoColumn": "geom", "columns": ["n"]},
        {"id": "places", "type": "table", "source": "public.e2e_places", "connectionName": CONN, "geoColumn": "geom",
         "columns": ["name"]},
    ]
    m = assert_ok(api.post("/api/v3/workspace/maps", token=admin.token,
                           json_body={"title": h.unique("iso"), "datasets": datasets}), 201)
    assert_ok(api.patch(f"/api/v3/workspace/maps/{m['id']}", token=admin.token, json_body={"privacy": "public"}))
    doc = assert_ok(api.get(f"/api/v3/maps/public/{m['id']}"))
    return doc["token"]


def test_map_token_burst_queues_instead_of_failing(api, public_map):
    """fetchMap starts every layer's handshake at once and a browser opens 16 tile requests: a burst up to
    the per-token cap waits briefly in the queue and never sees an error."""
    results: list = [None] * 16

    def handshake(i: int) -> None:
        results[i] = api.post(f"/api/v3/maps/{CONN}/table", token=public_map,
                              json_body={**CLIENT, "name": "public.e2e_places", "tag-n": str(i)})

    threads = [threading.Thread(target=handshake, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status for r in results] == [200] * 16, results


def test_map_token_flood_does_not_hold_the_pool(api, stack, public_map, admin):
    results: list = []
    lock = threading.Lock()

    def slow(i: int) -> None:
        r = api.post(f"/api/v3/stats/{CONN}/n", token=public_map, json_body={**CLIENT, "q": SLOW, "tag-n": str(i)})
        with lock:
            results.append(r)

    threads = [threading.Thread(target=slow, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    try:
        h.wait_until(lambda: h.active_queries(stack, "e2e_iso_flood") >= 4, timeout=30)
        # The admin's statement goes through the same maps-api program and warehouse pool.
        admin_answer = api.post(f"/api/v3/stats/{CONN}/one", token=admin.token,
                                json_body={**CLIENT, "q": "SELECT 1 AS one, ST_MakePoint(0, 0) AS geom"})
        still_running = h.active_queries(stack, "e2e_iso_flood")
    finally:
        for t in threads:
            t.join()
    assert admin_answer.status == 200, admin_answer
    assert still_running > 0, "the admin was answered while the map token's queries were still running"
    statuses = sorted(r.status for r in results)
    assert set(statuses) <= {200, 429}, statuses
    limited = [r for r in results if r.status == 429]
    assert limited, "twenty slow statements exceed what one token may hold"
    for r in limited:
        assert_error(r, 429, "concurrency_limit")
        assert int(r.header("Retry-After")) >= 1
    assert statuses.count(200) <= 16
