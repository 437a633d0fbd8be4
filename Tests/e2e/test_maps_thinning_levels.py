"""Precomputed thinning levels (issues 13 and 15: every low-zoom tile of a big point layer fast, still seamless and
honest), through the real nginx -> FastCGI maps-api path and the real sql-worker.

Sources/MapsAPI/ThinningLevels.swift: the sql-worker's `thinning_levels` job (queued by the first low-zoom tile
that found none fresh) stores, per dense point table and order, every feature kept at some zoom 0-6 with its
minimum zoom, beside the aggregation levels in the warehouse's `carto` schema; tiles z0-6 then read only their
kept features. `X-Tessera-Thinning-Levels` says which path answered. Checked here: a tile from the levels is
byte for byte the per-request thinned tile (same feature ids), a data change (a SQL job appending rows) sends
tiles back to the per-request path and the queue rebuilds the levels, the TileJSON's counts stay right, and a
role without access to the table cannot read the levels."""

from __future__ import annotations

import os
import re

import hashlib
import json
from pathlib import Path

import pytest

import helpers as h
import mvt
from helpers import assert_ok
from test_maps_thinning import CLIENT_PARAMS, CONN, INTERIM, get, local, steady
from test_sql_jobs import final, run_job

TABLE = "public.e2e_thin_levels"
# Over the default feature budget (20,000: thinned) yet under the per-request block sample's threshold (25,600
# rows in a tile), so the per-request statement ranks every row and both paths must agree exactly.
N = 24_000
OUTSIDER = "e2e_thin_outsider"
EVERYTHING = json.dumps({"pop": {"between": {"values": [[0, 10_000_000]]}}})


@pytest.fixture(scope="module")
def table(stack, dw):
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS {TABLE};
        CREATE TABLE {TABLE} (id int PRIMARY KEY, pop int NOT NULL, geom geometry(Point, 4326));
        SELECT setseed(0.31);
        INSERT INTO {TABLE}
          SELECT i, (i * 7919) % {N},
                 {h.CLUSTERED_EUROPE_POINT}
          FROM generate_series(1, {N}) i;
        CREATE INDEX ON {TABLE} USING gist (geom);
        ANALYZE {TABLE};
    """)
    return TABLE


def tilejson(stack, token, **params) -> dict:
    status, _, body = get(stack, f"/api/v3/maps/{CONN}/table", token, params={**CLIENT_PARAMS, "name": TABLE, **params})
    assert status == 200, body
    status, _, body = get(stack, local(stack, json.loads(body)["tilejson"]["url"][0]), token, headers={"Cache-Control": "no-cache"})
    assert status == 200, body
    return json.loads(body)


def tile(stack, token, tj, z, x, y) -> tuple[bytes, str | None, set[int]]:
    """The tile's bytes, the path that answered (X-Tessera-Thinning-Levels) and its feature ids, past the caches."""
    path = local(stack, tj["tiles"][0]).replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    status, headers, body = get(stack, path, token, headers={"Cache-Control": "no-cache"})
    assert status in (200, 204), body
    assert headers.get("content-encoding") != "gzip"
    ids = {int(f.properties["id"]) for f in mvt.decode(body)["default"].features} if status == 200 else set()
    return body, headers.get("x-tessera-thinning-levels"), ids


def until_precomputed(stack, token, tj, z, x, y, want=None) -> tuple[bytes, set[int]]:
    seen = {}

    def done() -> bool:
        body, path, ids = tile(stack, token, tj, z, x, y)
        seen.update(body=body, ids=ids)
        return path == "precomputed" and (want is None or want <= ids)

    h.wait_until(done, timeout=120, interval=0.5)
    return seen["body"], seen["ids"]


def relation(stack, order: str) -> str:
    """The levels table of the table thinned in `order` ("" uniform, "pop:desc"): ThinningLevels.key, at the default
    budget's grid (32 cells a tile side, 3 features a cell)."""
    key = hashlib.sha256("\0".join(["t2", '"public"."e2e_thin_levels"', "geom", "4326", order, "5", "3"]).encode()).hexdigest()[:24]
    return h.warehouse(stack, f"SELECT relation FROM carto.tessera_agg_levels WHERE key = '{key}'")


TILES = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 2, 1), (3, 4, 2), (4, *mvt.tile_of(2.35, 48.85, 4)),
         (5, *mvt.tile_of(13.4, 52.5, 5)), (5, *mvt.tile_of(13.4, 52.5, 5)[:1], mvt.tile_of(13.4, 52.5, 5)[1] + 1),
         (6, *mvt.tile_of(2.35, 48.85, 6))]


@pytest.mark.parametrize("order", [None, "pop"])
def test_levels_tiles_equal_per_request_tiles(stack, full_token, table, order):
    extra = {"thinningOrder": order} if order else {}
    tj = tilejson(stack, full_token, columns="id,pop", **extra)
    assert tj["thinning"]["maxzoom"] >= 5, tj["thinning"]
    # The same rows thinned per request: a filter every row passes keeps the source off the levels.
    live = tilejson(stack, full_token, columns="id,pop", filters=EVERYTHING, **extra)
    first_body, first_path, first_ids = tile(stack, full_token, tj, 0, 0, 0)
    assert first_path in ("live", "precomputed") and first_ids
    until_precomputed(stack, full_token, tj, 0, 0, 0)
    for z, x, y in TILES:
        body, path, ids = tile(stack, full_token, tj, z, x, y)
        want_body, want_path, want_ids = tile(stack, full_token, live, z, x, y)
        assert path == "precomputed" and want_path is None, (z, x, y)
        assert ids == want_ids and len(ids) > 0, (z, x, y, len(ids ^ want_ids))
        assert body == want_body, (z, x, y)
    # Thinning happened (the comparison would prove little otherwise), and the TileJSON now counts from the levels.
    assert len(tile(stack, full_token, tj, 3, 4, 2)[2]) < N // 4
    now = tilejson(stack, full_token, columns="id,pop", **extra)
    assert now["thinning"]["levels"] == "precomputed"
    assert now["fraction_dropped_per_zoom"][:6] == pytest.approx(tj["fraction_dropped_per_zoom"][:6], abs=0.002)
    # Deeper than the levels' zooms: per request (no header), as before.
    _, path, _ = tile(stack, full_token, tj, 7, *mvt.tile_of(2.35, 48.85, 7))
    assert path is None


def test_a_data_change_rebuilds_the_levels(api, stack, full_token, table):
    tj = tilejson(stack, full_token, columns="id,pop", thinningOrder="pop")
    z, (x, y) = 2, mvt.tile_of(20.0, 56.0, 2)
    until_precomputed(stack, full_token, tj, z, x, y)
    before = relation(stack, "pop:desc")
    # New top-ranked places in a row over the Baltic (0.7 degrees apart), appended by a SQL job: each the best of
    # its z2 grid cell (2.8 degrees), so all are kept at z2.
    job = run_job(api, full_token, f"""INSERT INTO {TABLE} SELECT {N} + i, 1000000 + i,
        ST_SetSRID(ST_MakePoint(18 + i * 0.7, 56), 4326) FROM generate_series(1, 5) i""")
    assert final(api, full_token, job)["status"] == "success"
    new = {N + i for i in range(1, 6)}
    _, ids = until_precomputed(stack, full_token, tj, z, x, y, want=new)
    assert new <= ids
    assert relation(stack, "pop:desc") != before
    # At z0 they share one grid cell (1/32 of the world): only its best three are kept, from either path.
    _, path, ids0 = tile(stack, full_token, tj, 0, 0, 0)
    assert path == "precomputed" and ids0 & new == {N + 3, N + 4, N + 5}
    # The old levels table is gone.
    assert h.warehouse(stack, f"SELECT to_regclass('carto.{before}') IS NULL") == "t"


def test_a_role_without_the_table_cannot_read_the_levels(stack, full_token, table):
    tj = tilejson(stack, full_token, columns="id")
    until_precomputed(stack, full_token, tj, 1, 1, 0)
    rel = relation(stack, "")
    assert rel.startswith("tessera_thin_")
    stack.psql(f"DO $$ BEGIN CREATE ROLE {OUTSIDER} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$; "
               f"GRANT USAGE ON SCHEMA carto TO {OUTSIDER}; GRANT SELECT ON carto.tessera_agg_levels TO {OUTSIDER}",
               dbname="carto_dw")
    # Side tables live where the aggregation levels do: the warehouse owner's `carto` schema, no grant to anyone.
    with pytest.raises(h.StackError, match="permission denied"):
        stack.psql(f"SET ROLE {OUTSIDER}; SELECT count(*) FROM carto.{rel}", dbname="carto_dw")
    with pytest.raises(h.StackError, match="permission denied"):
        stack.psql(f"SET ROLE {OUTSIDER}; SELECT count(*) FROM {TABLE}", dbname="carto_dw")
    # Even with the levels readable, a session that cannot read the table is never pointed at them.
    stack.psql(f"GRANT SELECT ON carto.{rel} TO {OUTSIDER}", dbname="carto_dw")
    try:
        found = stack.psql(f"""SET ROLE {OUTSIDER};
            SELECT count(*) FROM carto.tessera_agg_levels l WHERE l.relation = '{rel}'
              AND has_table_privilege(to_regclass('"public"."e2e_thin_levels"'), 'SELECT')""", dbname="carto_dw")
        assert found == "0"
    finally:
        stack.psql(f"REVOKE SELECT ON carto.{rel} FROM {OUTSIDER}", dbname="carto_dw")


# ---- kept up to date by the queue (issues 13/15): a write queues the rebuild, no tile has to find the levels stale

REIMPORTED = "public.e2e_thin_reimport"


def version_sql(table: str) -> str:
    """AggregationLevels.version: what the catalogue records and a tile compares."""
    return (f"(SELECT c.oid::text || ':' || c.relfilenode || ':' || coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0) "
            f"FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid WHERE c.oid = to_regclass('{table}'))")


def levels_key(table: str, order: str) -> str:
    schema, name = table.split(".")
    return hashlib.sha256("\0".join(["t2", f'"{schema}"."{name}"', "geom", "4326", order, "5", "3"]).encode()).hexdigest()[:24]


def fresh_relation(stack, table: str, order: str) -> str:
    """The levels table of `table` when the catalogue says it is current with the table's data, else ''."""
    return h.warehouse(stack, f"SELECT relation FROM carto.tessera_agg_levels WHERE key = '{levels_key(table, order)}' "
                              f"AND data_version = {version_sql(table)}")


def import_csv(stack, admin, path, table: str, overwrite: bool) -> None:
    from test_imports import IMPORTS, upload_stream

    params = {"connection": CONN, "destination": table, "overwrite": overwrite, "filename": path.name}
    r = upload_stream(stack, f"{IMPORTS}?{h.encode_query(params)}", path, admin.token)
    assert r.status == 201, r
    job = r.json()["id"]
    state = {}

    def done() -> bool:
        state.update(assert_ok(h.Api(stack).get(f"{IMPORTS}/{job}", token=admin.token)))
        return state["status"] in ("success", "failure", "cancelled")

    h.wait_until(done, timeout=120, interval=0.2)
    assert state["status"] == "success", state


def places_csv(path, extra: int = 0):
    """The fixture table's kind of cloud, as a CSV; `extra` top-ranked places in a row over the Baltic (0.7 degrees
    apart, each the best of its z2 grid cell)."""
    import random

    rnd = random.Random(31)
    lines = ["id,pop,latitude,longitude"]
    for i in range(1, N + 1):
        if i % 4 == 0:
            lon, lat = -10 + 40 * rnd.random(), 36 + 24 * rnd.random()
        else:
            lon = [2.35, 13.4, 12.5][i % 3] + 4 * (rnd.random() - 0.5)
            lat = [48.85, 52.5, 41.9][i % 3] + 4 * (rnd.random() - 0.5)
        lines.append(f"{i},{(i * 7919) % N},{lat:.6f},{lon:.6f}")
    lines += [f"{N + i},{1_000_000 + i},56,{18 + i * 0.7:.1f}" for i in range(1, extra + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_reimport_rebuilds_the_levels_before_any_tile(stack, admin, full_token, tmp_path):
    """The import's completion queues the refresh (LevelsRefresh): the levels of the table are rebuilt with no tile
    request at all, and the first low-zoom tile after the re-import is already precomputed and the new data's."""
    import_csv(stack, admin, places_csv(tmp_path / "v1.csv"), REIMPORTED, overwrite=False)
    tj = tilejson(stack, full_token, name=REIMPORTED, columns="id,pop", thinningOrder="pop")
    z, (x, y) = 2, mvt.tile_of(20.0, 56.0, 2)
    until_precomputed(stack, full_token, tj, z, x, y)
    before = fresh_relation(stack, REIMPORTED, "pop:desc")
    assert before.startswith("tessera_thin_")

    import_csv(stack, admin, places_csv(tmp_path / "v2.csv", extra=5), REIMPORTED, overwrite=True)
    assert fresh_relation(stack, REIMPORTED, "pop:desc") != before  # the swap moved the version at once
    h.wait_until(lambda: fresh_relation(stack, REIMPORTED, "pop:desc") not in ("", before), timeout=120, interval=0.3)
    assert h.warehouse(stack, f"SELECT to_regclass('carto.{before}') IS NULL") == "t"

    # The first tile after the change: from the levels (this process still remembered the dropped relation), and the
    # new places are in it; every tile then equals the same rows thinned per request.
    new = {N + i for i in range(1, 6)}
    _, path, ids = tile(stack, full_token, tj, z, x, y)
    assert path == "precomputed" and new <= ids
    live = tilejson(stack, full_token, name=REIMPORTED, columns="id,pop", thinningOrder="pop", filters=EVERYTHING)
    for z, x, y in TILES:
        body, path, ids = tile(stack, full_token, tj, z, x, y)
        want_body, _, want_ids = tile(stack, full_token, live, z, x, y)
        assert path == "precomputed" and ids == want_ids and body == want_body, (z, x, y)


def test_a_sql_job_write_rebuilds_the_levels_before_any_tile(api, stack, full_token, table):
    tj = tilejson(stack, full_token, columns="id,pop")
    until_precomputed(stack, full_token, tj, 1, 1, 0)
    before = fresh_relation(stack, TABLE, "")
    assert before
    job = run_job(api, full_token, f"UPDATE {TABLE} SET pop = pop WHERE id <= 3")
    assert final(api, full_token, job)["status"] == "success"
    h.wait_until(lambda: fresh_relation(stack, TABLE, "") not in ("", before), timeout=60, interval=0.3)
    assert tile(stack, full_token, tj, 1, 1, 0)[1] == "precomputed"


def test_a_precomputed_low_zoom_tile_is_one_round_trip(stack, full_token, table):
    """The catalogue lookup is folded into the tile statement (AggregationLevels.fresh) once the process knows the
    relation: counted in PostgreSQL's own statement log, each tile is one statement on its session besides the reset
    at check-in; and by maps-api's round-trip counter, once the sessions have prepared the statements (a Parse is a
    round trip of its own, once per session and statement), a pass over the tiles costs one per tile."""
    from statement_log import statement_log
    from test_metrics import scrape, value

    tj = tilejson(stack, full_token, columns="id,pop")
    until_precomputed(stack, full_token, tj, 0, 0, 0)

    def counters() -> tuple[float, float]:
        text = scrape(stack, "maps-api")[2]
        return (value(text, 'tessera_db_pool_checkouts_total{pool="warehouse"}') or 0,
                value(text, 'tessera_db_round_trips_total{pool="warehouse",phase="request"}') or 0)

    passes = []
    for _ in range(20):
        checkouts, trips = counters()
        for z, x, y in TILES:
            assert tile(stack, full_token, tj, z, x, y)[1] == "precomputed"
        after = counters()
        passes.append((after[0] - checkouts, after[1] - trips))
        if passes[-1] == (len(TILES), len(TILES)):
            break
    print(f"{len(TILES)} precomputed tiles per pass, (checkouts, request round trips) per pass: {passes}")
    assert all(c == len(TILES) for c, _ in passes) and passes[-1] == (len(TILES), len(TILES)), passes

    with statement_log(stack) as log:
        for z, x, y in TILES:
            assert tile(stack, full_token, tj, z, x, y)[1] == "precomputed"
    ran = [s[3] for s in log.of_backends_running("_levels AS MATERIALIZED")]
    tiles = [s for s in ran if "_levels AS MATERIALIZED" in s]
    assert len(tiles) == len(TILES), ran
    # The reset's statements (Sources/Postgres/PGResetStatement.swift), prepared once per session and run by name.
    reset = {"RESET SESSION AUTHORIZATION", "RESET ROLE", "RESET ALL", "CLOSE ALL", "UNLISTEN *", "SELECT pg_catalog.pg_advisory_unlock_all()",
             "DISCARD TEMP", "DISCARD SEQUENCES", "SELECT name, from_sql FROM pg_catalog.pg_prepared_statement()", "BEGIN READ ONLY", "ROLLBACK",
             # the short read-only reset (PGSessionReset+ReadOnly.swift): its transaction stamp, checked and renewed
             "SELECT 1 OPERATOR(pg_catalog./) (pg_catalog.now() OPERATOR(pg_catalog.=) $1::pg_catalog.timestamptz)::pg_catalog.int4, "
             "pg_catalog.pg_advisory_unlock_all()", "SELECT pg_catalog.now()::pg_catalog.text"}
    # The pool's own session management: the reset at check-in, and the re-priming of a READ ONLY transaction that
    # waited idle longer than the pool's maxPrimedAge (1 s; the log's setup between passes takes longer).
    others = [s for s in ran if "_levels AS MATERIALIZED" not in s
              and not all(re.sub(r"'[0-9 :.+-]+'", "'<stamp>'", part.strip()) in reset for part in s.strip().rstrip(";").split(";"))]
    assert others == [], others


# ---- issue 13: no seam between a precomputed and a live low-zoom tile. test_maps_thinning's dataset: ~60,000 rows
# in a z0-3 tile over Paris, over the threshold where the live path used to read a block sample (Thinning.samplePercent)
# while the levels hold the exact rule over every row; a live tile then kept other features than its precomputed
# neighbour in their shared buffer (3/4/2 live beside 3/3/2 precomputed). Both paths must keep the same features.

DENSE = "public.e2e_thin_levels_dense"


def clustered_table(stack, table: str, seed: float, then: str = "") -> dict[int, tuple[float, float]]:
    """60,000 points clustered over Europe (pop 0, then `then`), indexed and analyzed: their coordinates by id."""
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS {table};
        CREATE TABLE {table} (id int PRIMARY KEY, pop int NOT NULL, geom geometry(Point, 4326));
        SELECT setseed({seed});
        INSERT INTO {table}
          SELECT i, 0,
                 {h.CLUSTERED_EUROPE_POINT}
          FROM generate_series(1, 60000) i;
        {then}
        CREATE INDEX ON {table} USING gist (geom);
        ANALYZE {table};
    """)
    points = {}
    for line in h.warehouse(stack, f"SELECT id, ST_X(geom), ST_Y(geom) FROM {table}").splitlines():
        i, lon, lat = line.split("|")
        points[int(i)] = (float(lon), float(lat))
    return points


def sql_worker_binary() -> Path:
    return Path(os.environ.get("STACK_BIN", Path(__file__).resolve().parents[2] / ".build" / "release")).resolve() / "tessera-sql-worker"


@pytest.fixture(scope="module")
def dense_table(stack, dw):
    return clustered_table(stack, DENSE, 0.13, then=f"""
        UPDATE {DENSE} t SET pop = r.rank FROM (SELECT id, row_number() OVER (ORDER BY md5(id::text)) AS rank FROM {DENSE}) r
          WHERE r.id = t.id;""")


def border_tiles() -> list[tuple[int, int, int]]:
    """The Paris tile of z0-4 and its four neighbours (their shared borders run through the densest cluster)."""
    out = set()
    for z in range(0, 5):
        x, y = mvt.tile_of(2.35, 48.85, z)
        out |= {(z, x + dx, y + dy) for dx, dy in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))
                if 0 <= x + dx < 1 << z and 0 <= y + dy < 1 << z}
    assert {(3, 3, 2), (3, 4, 2)} <= out
    return sorted(out)


@pytest.mark.parametrize("order", [None, "pop"])
def test_live_and_precomputed_tiles_keep_the_same_features_at_the_borders(stack, full_token, dense_table, order):
    from test_maps_thinning import BUFFER, inside

    points = dense_table
    extra = {"thinningOrder": order} if order else {}
    tiles = border_tiles()
    # No sql-worker: nothing builds the levels, so every tile answers from the per-request path, deterministically.
    binary = sql_worker_binary()
    stack.stop_api("sql-worker")
    try:
        # The tiles without the interim pin (the TileJSON queues the build): the exact per-request rule, as a TileJSON
        # given once the levels exist serves it while they are stale again (test_interim_tiles_* checks the pinned ones).
        tj = steady(tilejson(stack, full_token, name=DENSE, columns="id,pop", **extra))
        assert tj["thinning"]["maxzoom"] >= 4, tj["thinning"]
        live = {}
        for t in tiles:
            _, path, ids = tile(stack, full_token, tj, *t)
            assert path == "live", t
            live[t] = ids
    finally:
        stack.start_worker("sql-worker", binary)
    until_precomputed(stack, full_token, tj, 0, 0, 0)
    for t in tiles:
        _, path, ids = tile(stack, full_token, tj, *t)
        assert path == "precomputed", t
        # Every feature, the buffer's included (the tile's ids are all it holds, within its buffer).
        assert ids == live[t], (order, t, sorted(ids - live[t])[:10], sorted(live[t] - ids)[:10])
    assert all(live[(z, *mvt.tile_of(2.35, 48.85, z))] for z in range(0, 5))
    # The pair of the report, across paths: a feature within both buffers is in the live 3/4/2 exactly when it is
    # in the precomputed 3/3/2; many such features, some dropped (the thinning did happen there).
    precomputed = tile(stack, full_token, tj, 3, 3, 2)[2]
    shared = [i for i, (lon, lat) in points.items()
              if inside(lon, lat, 3, 3, 2, BUFFER - 1) and inside(lon, lat, 3, 4, 2, BUFFER - 1)]
    seams = [i for i in shared if (i in live[(3, 4, 2)]) != (i in precomputed)]
    kept = sum(1 for i in shared if i in precomputed)
    assert not seams, (order, seams[:10])
    assert len(shared) > 200 and 0 < kept < len(shared), (order, len(shared), kept)


# ---- before the levels exist (just imported; the build queued or running): a z0 tile of 1M points used to rank every
# row (~1.4 s). The TileJSON then pins interim tiles (`thinning=sampled` in its tiles URL, cached 10 s): thinned per
# request from a repeatable block sample, never from the levels, even once built, so a client never holds an interim
# tile beside a precomputed one; the next TileJSON, once the levels exist, gives the precomputed tiles.

INTERIM_TABLE = "public.e2e_thin_levels_interim"


@pytest.fixture(scope="module")
def interim_table(stack, dw):
    return clustered_table(stack, INTERIM_TABLE, 0.57)


def test_interim_tiles_are_sampled_seamless_flagged_and_pinned(stack, full_token, interim_table):
    from test_maps_thinning import BUFFER, inside

    points = interim_table
    tiles = border_tiles()
    binary = sql_worker_binary()
    stack.stop_api("sql-worker")
    try:
        status, _, body = get(stack, f"/api/v3/maps/{CONN}/table", full_token,
                              params={**CLIENT_PARAMS, "name": INTERIM_TABLE, "columns": "id,pop"})
        assert status == 200, body
        # Cached briefly (the next map opened once the levels exist gets precomputed tiles), not the table's 30 min.
        status, headers, body = get(stack, local(stack, json.loads(body)["tilejson"]["url"][0]), full_token)
        assert status == 200 and headers.get("cache-control") == "private, max-age=10", headers
        tj = json.loads(body)
        assert tj["thinning"]["levels"] == "interim" and INTERIM in tj["tiles"][0], tj["thinning"]
        # Honest: the TileJSON counts what the samples drop at the sampled zooms (60,000 rows in a z0-3 tile).
        assert all(f > 0.9 for f in tj["fraction_dropped_per_zoom"][:4]), tj["fraction_dropped_per_zoom"]
        interim = {}
        for t in tiles:
            body, path, ids = tile(stack, full_token, tj, *t)
            assert path == "interim", t
            interim[t] = (body, ids)
        path = local(stack, tj["tiles"][0]).replace("{z}", "0").replace("{x}", "0").replace("{y}", "0")
        status, headers, _ = get(stack, path, full_token, headers={"Cache-Control": "no-cache"})
        assert status == 200 and "x-tessera-thinning" in headers, headers
    finally:
        stack.start_worker("sql-worker", binary)
    # Seamless: a feature inside both buffers of two neighbours is kept in both or in neither.
    total = kept = 0
    for a in tiles:
        for b in tiles:
            if a[0] != b[0] or abs(a[1] - b[1]) + abs(a[2] - b[2]) != 1 or a >= b:
                continue
            shared = [i for i, (lon, lat) in points.items() if inside(lon, lat, *a, BUFFER - 1) and inside(lon, lat, *b, BUFFER - 1)]
            seams = [i for i in shared if (i in interim[a][1]) != (i in interim[b][1])]
            assert not seams, (a, b, seams[:10])
            total += len(shared)
            kept += sum(1 for i in shared if i in interim[a][1])
    assert total > 200 and 0 < kept < total, (total, kept)
    # The TileJSON queued the build: the tiles of a later TileJSON come from the levels ...
    steady_tj = steady(tj)
    _, precomputed = until_precomputed(stack, full_token, steady_tj, 0, 0, 0)
    now = tilejson(stack, full_token, name=INTERIM_TABLE, columns="id,pop")
    assert now["thinning"]["levels"] == "precomputed" and INTERIM not in now["tiles"][0], now["thinning"]
    # ... which keep other features than the sample did (so mixing the two would have made seams) ...
    assert precomputed != interim[(0, 0, 0)][1]
    # ... while the interim URL's tiles stay what they were: a client still holding some keeps a seamless map.
    for t in tiles:
        body, path, _ = tile(stack, full_token, tj, *t)
        assert path == "interim" and body == interim[t][0], t
