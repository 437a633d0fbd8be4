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

import hashlib
import json

import pytest

import helpers as h
import mvt
from helpers import assert_ok
from test_maps_thinning import CLIENT_PARAMS, CONN, get, local
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
                 ST_SetSRID(ST_MakePoint(
                   CASE WHEN i % 4 = 0 THEN -10 + 40 * random() ELSE (ARRAY[2.35, 13.4, 12.5, -3.7])[1 + i % 3] + 4 * (random() - 0.5) END,
                   CASE WHEN i % 4 = 0 THEN 36 + 24 * random() ELSE (ARRAY[48.85, 52.5, 41.9, 40.4])[1 + i % 3] + 4 * (random() - 0.5) END), 4326)
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
