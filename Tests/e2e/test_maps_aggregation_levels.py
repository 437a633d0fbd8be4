"""Precomputed aggregation levels (issue 12): low-zoom aggregated tiles of a table source are read from levels the
sql-worker builds in the warehouse (queued by the first tile that found none), and a data change sends tiles back to
the live grouping until the queue has rebuilt them. Every answer, from either path, is compared with the same grouping
in plain SQL; `X-Tessera-Aggregation` says which path answered."""
from __future__ import annotations

import pytest

import helpers as h
from helpers import assert_ok
from test_maps_api import Maps

TABLE = "public.e2e_levels_points"
N = 30000
AGG = {"spatialDataColumn": "geom", "aggregationExp": "count(*) AS n, sum(value) AS total"}


@pytest.fixture(scope="module")
def maps(stack):
    m = Maps(stack)
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS {TABLE};
        CREATE TABLE {TABLE} (id int, value int, geom geometry(Point, 4326));
        INSERT INTO {TABLE}
        SELECT i, i % 11, ST_SetSRID(ST_MakePoint(-170 + 340 * ((i * 7919) % 10007) / 10007.0,
                                                 -70 + 140 * ((i * 104729) % 9973) / 9973.0), 4326)
        FROM generate_series(1::bigint, {N}::bigint) i;
        CREATE INDEX ON {TABLE} USING gist (geom);
        ANALYZE {TABLE};
    """)
    return m


def quadbin_hex(stack, z, x, y) -> str:
    return h.warehouse(stack, f"SELECT lpad(to_hex(carto.quadbin_fromzxy({z}, {x}, {y})), 16, '0')")


def expected_quadbin(stack, resolution: int, z: int, x: int, y: int) -> dict:
    rows = h.warehouse(stack, f"""
        SELECT lpad(to_hex(c), 16, '0'), count(*), sum(value) FROM (
          SELECT carto.quadbin_frompoint(geom, {resolution}) AS c, value FROM {TABLE}) t
        WHERE carto.quadbin_toparent(c, {z}) = carto.quadbin_fromzxy({z}, {x}, {y})
        GROUP BY 1""")
    return {c: (int(n), int(s)) for c, n, s in (line.split("|") for line in rows.splitlines())}


def expected_h3(stack, resolution: int, tile: str) -> dict:
    rows = h.warehouse(stack, f"""
        SELECT carto.h3_fromgeogpoint(geom, {resolution}) AS c, count(*), sum(value) FROM {TABLE}
        GROUP BY 1 HAVING carto.h3_toparent(carto.h3_fromgeogpoint(geom, {resolution}), carto.h3_resolution('{tile}'::text)) = '{tile}'""")
    return {c: (int(n), int(s)) for c, n, s in (line.split("|") for line in rows.splitlines())}


def tile(maps, tj, i: str) -> tuple[dict, str]:
    """The tile's {cell: (count, sum)} and the path that answered it, past the http-cache (which would keep
    answering whichever path made the first answer)."""
    r = maps.api.get(maps.local(tj["tiles"][0]).replace("{i}", i), token=maps.star, headers={"Cache-Control": "no-cache"})
    path = r.header("X-Tessera-Aggregation")
    if r.status == 204:
        return {}, path
    body = assert_ok(r)
    return {c["id"]: (c["properties"]["n"], c["properties"]["total"]) for c in body}, path


def until_precomputed(maps, tj, i: str) -> dict:
    """Requests the tile until the levels answer it (the first request queued their build)."""
    seen: dict = {}

    def precomputed() -> bool:
        got, path = tile(maps, tj, i)
        seen["cells"] = got
        return path == "precomputed"

    h.wait_until(precomputed, timeout=90, interval=0.5)
    return seen["cells"]


def levels_rows(stack) -> int:
    exists = h.warehouse(stack, "SELECT to_regclass('carto.tessera_agg_levels') IS NOT NULL")
    if exists != "t":
        return 0
    return int(h.warehouse(stack, f"SELECT count(*) FROM carto.tessera_agg_levels WHERE source_table = '\"public\".\"e2e_levels_points\"'"))


def attributes(maps, body) -> dict:
    """The TileJSON's tilestats attributes (fetchMap's colour domains), past the http-cache."""
    url = maps.local(body["tilejson"]["url"][0])
    tj = assert_ok(maps.api.get(url, token=maps.star, headers={"Cache-Control": "no-cache"}))
    return {a["attribute"]: [a[k] for k in ("min", "max", "sum")] for a in tj["tilestats"]["layers"][0]["attributes"]}


def plain_attributes(stack, resolution: int) -> dict:
    n = h.warehouse(stack, f"""
        SELECT min(n), max(n), sum(n), min(t), max(t), sum(t) FROM (
          SELECT count(*) AS n, sum(value) AS t FROM {TABLE} GROUP BY carto.quadbin_frompoint(geom, {resolution})) c""").split("|")
    return {"n": [float(v) for v in n[:3]], "total": [float(v) for v in n[3:]]}


def test_quadbin_levels_match_plain_sql_and_follow_data_changes(stack, maps):
    body = maps.source("table", {"name": TABLE, "spatialDataType": "quadbin", **AGG})
    tj = maps.tilejson(body)  # level 6
    z0 = quadbin_hex(stack, 0, 0, 0)
    got, path = tile(maps, tj, z0)
    assert path in ("live", "precomputed") and got == expected_quadbin(stack, 6, 0, 0, 0)
    got = until_precomputed(maps, tj, z0)
    assert got == expected_quadbin(stack, 6, 0, 0, 0)
    assert sum(n for n, _ in got.values()) == N
    # The TileJSON's tilestats attributes (cells at the centre's zoom 2 + level 6) come from the levels too.
    assert attributes(maps, body) == plain_attributes(stack, 8)
    # Other zooms up to 6 read the same levels (resolutions z + 6), cell for cell.
    for z, x, y in [(1, 1, 0), (3, 4, 2), (6, 33, 22)]:
        got, path = tile(maps, tj, quadbin_hex(stack, z, x, y))
        assert path == "precomputed" and got == expected_quadbin(stack, z + 6, z, x, y), (z, x, y)
    # Deeper tiles group live.
    got, path = tile(maps, tj, quadbin_hex(stack, 7, 66, 44))
    assert path == "live" and got == expected_quadbin(stack, 13, 7, 66, 44)

    # A data change: the levels are stale at once (any answer is the new data's), and the queue rebuilds them.
    h.warehouse(stack, f"""INSERT INTO {TABLE} SELECT {N} + i, 100, ST_SetSRID(ST_MakePoint(2.35, 48.86), 4326)
                           FROM generate_series(1, 50) i""")
    want = expected_quadbin(stack, 6, 0, 0, 0)
    assert sum(n for n, _ in want.values()) == N + 50
    h.wait_until(lambda: tile(maps, tj, z0)[0] == want, timeout=30, interval=0.2)
    assert until_precomputed(maps, tj, z0) == want
    got, path = tile(maps, tj, quadbin_hex(stack, 5, 16, 11))
    assert path == "precomputed" and got == expected_quadbin(stack, 11, 5, 16, 11)
    assert attributes(maps, body) == plain_attributes(stack, 8)
    assert levels_rows(stack) >= 1


def test_h3_levels_match_plain_sql(stack, maps):
    tj = maps.tilejson(maps.source("table", {"name": TABLE, "spatialDataType": "h3", **AGG, "aggregationResLevel": "3"}))
    base = h.warehouse(stack, "SELECT carto.h3_fromlonglat(2, 46, 0)")
    got = until_precomputed(maps, tj, base)
    assert got == expected_h3(stack, 3, base) and got
    for lon, lat, z in [(2.0, 46.0, 2), (-74.0, 40.7, 4), (139.7, 35.7, 6)]:
        cell = h.warehouse(stack, f"SELECT carto.h3_fromlonglat({lon}, {lat}, {z})")
        got, path = tile(maps, tj, cell)
        assert path == "precomputed" and got == expected_h3(stack, z + 3, cell), (lon, lat, z)


def test_filtered_sources_group_live(stack, maps):
    tj = maps.tilejson(maps.source("table", {"name": TABLE, "spatialDataType": "quadbin", **AGG,
                                             "filters": '{"value": {"between": {"values": [[0, 5]]}}}'}))
    for _ in range(3):
        got, path = tile(maps, tj, quadbin_hex(stack, 0, 0, 0))
        assert path == "live"
    rows = h.warehouse(stack, f"""
        SELECT lpad(to_hex(carto.quadbin_frompoint(geom, 6)), 16, '0'), count(*), sum(value) FROM {TABLE}
        WHERE value BETWEEN 0 AND 5 GROUP BY 1""")
    assert got == {c: (int(n), int(s)) for c, n, s in (line.split("|") for line in rows.splitlines())}


def test_fetchmap_default_aggregation_keeps_its_alias(stack, maps):
    """fetchMap sends `aggregationExp=1 AS __aggregationValue` when a map sets none and reads that property back
    with its case (only Snowflake's is changed): PostgreSQL would fold an unquoted alias to lower case."""
    body = maps.source("table", {"name": TABLE, "spatialDataType": "quadbin", "spatialDataColumn": "geom",
                                 "aggregationExp": "1 AS __aggregationValue", "aggregationResLevel": "4"})
    tj = maps.tilejson(body)
    assert [a["attribute"] for a in tj["tilestats"]["layers"][0]["attributes"]] == ["__aggregationValue"]
    i = quadbin_hex(stack, 0, 0, 0)
    want = set(h.warehouse(stack, f"SELECT DISTINCT lpad(to_hex(carto.quadbin_frompoint(geom, 4)), 16, '0') FROM {TABLE}").split())
    paths = set()

    def check() -> bool:
        r = maps.api.get(maps.local(tj["tiles"][0]).replace("{i}", i), token=maps.star, headers={"Cache-Control": "no-cache"})
        cells = assert_ok(r)
        assert {c["id"] for c in cells} == want
        assert all(c["properties"] == {"__aggregationValue": 1} for c in cells)
        paths.add(r.header("X-Tessera-Aggregation"))
        return "precomputed" in paths

    h.wait_until(check, timeout=90, interval=0.5)  # live first, then from the levels the first tile queued


def fresh_levels(stack) -> str:
    """The relations of the table's levels that are current with its data (the catalogue's version is the table's)."""
    if h.warehouse(stack, "SELECT to_regclass('carto.tessera_agg_levels') IS NOT NULL") != "t":
        return ""
    return h.warehouse(stack, f"""
        SELECT coalesce(string_agg(relation, ',' ORDER BY relation), '') FROM carto.tessera_agg_levels l
        WHERE source_table = '"public"."e2e_levels_points"' AND data_version = (
          SELECT c.oid::text || ':' || c.relfilenode || ':' || coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0)
          FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid WHERE c.oid = to_regclass(l.source_table))""")


def test_a_sql_job_write_rebuilds_the_levels_before_any_tile(api, stack, maps, full_token):
    """Issues 13/15: a SQL job that writes queues the refresh of the connection's levels (LevelsRefresh), so the
    levels are rebuilt with no tile asking, and the first low-zoom tile after the write is precomputed and right."""
    from test_sql_jobs import final, run_job

    tj = maps.tilejson(maps.source("table", {"name": TABLE, "spatialDataType": "quadbin", **AGG}))
    z0 = quadbin_hex(stack, 0, 0, 0)
    until_precomputed(maps, tj, z0)
    h.wait_until(lambda: fresh_levels(stack) != "", timeout=60, interval=0.3)
    before = set(fresh_levels(stack).split(","))
    job = run_job(api, full_token, f"""INSERT INTO {TABLE} SELECT 900000 + i, 7, ST_SetSRID(ST_MakePoint(-58.4, -34.6), 4326)
                                      FROM generate_series(1, 20) i""")
    assert final(api, full_token, job)["status"] == "success"

    def rebuilt() -> bool:  # every key fresh before (other sources' too) is fresh again, from a new build
        now = set(fresh_levels(stack).split(",")) - {""}
        return len(now) == len(before) and not now & before

    h.wait_until(rebuilt, timeout=90, interval=0.3)
    got, path = tile(maps, tj, z0)
    assert path == "precomputed" and got == expected_quadbin(stack, 6, 0, 0, 0)
    assert sum(n for n, _ in got.values()) == int(h.warehouse(stack, f"SELECT count(*) FROM {TABLE}"))
