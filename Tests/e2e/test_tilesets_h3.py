"""Spatial-index tilesets (h3TilesetSource / quadbinTilesetSource): `tessera tileset create --spatial-index`
pre-generates the `{i}` tiles deck.gl's H3 and quadbin tile layers read; the client's handshake is the
vector tileset's (`tileset?name=`), the TileJSON says the scheme. Every stored tile is compared with the
same grouping done in plain SQL."""
from __future__ import annotations

import json

import pytest

import helpers as h
from helpers import assert_error, assert_ok
from test_maps_api import Maps

POINTS = "public.e2e_h3ts_points"
H3_CELLS = "public.e2e_h3ts_cells"
QB_CELLS = "public.e2e_qbts_cells"
H3_TS = "public.e2e_h3_tileset"
QB_TS = "public.e2e_qb_tileset"
H3_RES, QB_RES = 5, 10


@pytest.fixture(scope="module")
def maps(stack):
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS {POINTS}; DROP TABLE IF EXISTS {H3_CELLS}; DROP TABLE IF EXISTS {QB_CELLS};
        CREATE TABLE {POINTS} (value int, geom geometry(Point, 4326));
        INSERT INTO {POINTS}
        SELECT i % 11, ST_SetSRID(ST_MakePoint(-5 + 12 * ((i * 7919) % 10007) / 10007.0, 40 + 8 * ((i * 104729) % 9973) / 9973.0), 4326)
        FROM generate_series(1, 5000) i;
        CREATE TABLE {H3_CELLS} AS SELECT carto.h3_fromgeogpoint(geom, {H3_RES}) AS h3, sum(value)::int AS value, count(*)::int AS n
          FROM {POINTS} GROUP BY 1;
        CREATE TABLE {QB_CELLS} AS SELECT carto.quadbin_frompoint(geom, {QB_RES}) AS quadbin, sum(value)::int AS value, count(*)::int AS n
          FROM {POINTS} GROUP BY 1;
    """)
    for args in (["--name", H3_TS, "--table", H3_CELLS, "--spatial-index", "h3", "--spatial-column", "h3", "--maxzoom", "3"],
                 ["--name", QB_TS, "--table", QB_CELLS, "--spatial-index", "quadbin", "--spatial-column", "quadbin", "--maxzoom", "6"]):
        h.tessera(stack, "tileset", "create", "--email", stack.admin_email, *args,
                  "--aggregation-exp", "sum(n) AS n, sum(value) AS total", "--aggregation-res-level", "2")
    return Maps(stack)


def stored(maps, tj, tile: str) -> dict:
    r = maps.api.get(maps.local(tj["tiles"][0]).replace("{i}", tile), token=maps.star)
    if r.status == 204:
        return {}
    body = assert_ok(r)
    assert r.header("Content-Type") == "application/json"
    return {c["id"]: (c["properties"]["n"], c["properties"]["total"]) for c in body}


def test_h3_tileset_handshake_tilejson_and_tiles(stack, maps):
    body = maps.source("tileset", {"name": H3_TS})
    assert {c["name"] for c in body["schema"]} >= {"h3", "n", "total"}
    tj = maps.tilejson(body)
    assert tj["scheme"] == "h3" and "{i}" in tj["tiles"][0]
    assert "spatialIndex=h3" in tj["tiles"][0] and "formatTiles=json" in tj["tiles"][0]
    assert (tj["minresolution"], tj["maxresolution"], tj["minzoom"], tj["maxzoom"]) == (0, 3, 0, 3)
    attrs = {a["attribute"]: a for a in tj["tilestats"]["layers"][0]["attributes"]}
    assert attrs["n"]["sum"] == 5000 and attrs["n"]["type"] == "Number"
    for r in range(0, 4):
        tile = h.warehouse(stack, f"SELECT carto.h3_fromlonglat(1.0, 44.0, {r})")
        res = min(H3_RES, r + 2)
        rows = h.warehouse(stack, f"""SELECT carto.h3_toparent(h3, {res}), sum(n), sum(value) FROM {H3_CELLS}
                                      WHERE carto.h3_toparent(h3, {r}) = '{tile}' GROUP BY 1""")
        want = {c: (int(n), int(s)) for c, n, s in (line.split("|") for line in rows.splitlines())}
        assert want and stored(maps, tj, tile) == want, r
    # Past the tileset's resolutions, and where it has no data: nothing.
    assert maps.api.get(maps.local(tj["tiles"][0]).replace("{i}", h.warehouse(stack, "SELECT carto.h3_fromlonglat(1.0, 44.0, 4)")),
                        token=maps.star).status == 204
    assert stored(maps, tj, h.warehouse(stack, "SELECT carto.h3_fromlonglat(139.0, 35.0, 2)")) == {}


def test_quadbin_tileset_tiles(stack, maps):
    tj = maps.tilejson(maps.source("tileset", {"name": QB_TS}))
    assert tj["scheme"] == "quadbin" and "spatialIndex=quadbin" in tj["tiles"][0]
    assert (tj["minzoom"], tj["maxzoom"]) == (0, 6)
    for z in (0, 3, 6):
        tile = h.warehouse(stack, f"SELECT lpad(to_hex(carto.quadbin_fromlonglat(1.0, 44.0, {z})), 16, '0')")
        res = min(QB_RES, z + 2)
        rows = h.warehouse(stack, f"""SELECT lpad(to_hex(carto.quadbin_toparent(quadbin, {res})), 16, '0'), sum(n), sum(value)
                                      FROM {QB_CELLS} WHERE carto.quadbin_toparent(quadbin, {z}) = x'{tile}'::bigint GROUP BY 1""")
        want = {c: (int(n), int(s)) for c, n, s in (line.split("|") for line in rows.splitlines())}
        assert want and stored(maps, tj, tile) == want, z


def test_bad_tileset_input(stack, maps):
    h3 = maps.tilejson(maps.source("tileset", {"name": H3_TS}))
    qb = maps.tilejson(maps.source("tileset", {"name": QB_TS}))
    # The wrong kind of cell for the tileset, or a z/x/y tile: 400 naming the tile index.
    assert_error(maps.api.get(maps.local(h3["tiles"][0]).replace("{i}", "480fffffffffffff"), token=maps.star), 400, "invalid_tile")
    assert_error(maps.api.get(maps.local(qb["tiles"][0]).replace("{i}", "8029fffffffffff"), token=maps.star), 400, "invalid_tile")
    zxy = maps.local(h3["tiles"][0]).replace("{i}", "0/0/0").replace("formatTiles=json", "formatTiles=mvt")
    assert_error(maps.api.get(zxy, token=maps.star), 400, "invalid_tile")
    # A tileset whose metadata names a scheme Tessera does not serve: 400 naming the parameter.
    h.warehouse(stack, """DROP TABLE IF EXISTS public.e2e_s2_tileset; CREATE TABLE public.e2e_s2_tileset (cell bigint, data text);
        INSERT INTO tessera_tilesets (name, tilejson) VALUES ('public.e2e_s2_tileset', '{"scheme": "s2", "schema": []}')
        ON CONFLICT (name) DO UPDATE SET tilejson = excluded.tilejson""")
    err = assert_error(maps.handshake("tileset", {"name": "public.e2e_s2_tileset"}, maps.star), 400, "invalid_source")
    assert err["error"].startswith("name:") and "s2" in err["error"]
    # The builder refuses an unknown index, resolutions out of range and a column that holds no cells, naming the option.
    for args, needle in ((["--spatial-index", "s2", "--spatial-column", "h3"], "--spatial-index"),
                         (["--spatial-index", "h3", "--spatial-column", "h3", "--maxzoom", "16"], "maxzoom"),
                         (["--spatial-index", "h3", "--spatial-column", "value"], "not an H3 cell")):
        r = h.tessera(stack, "tileset", "create", "--email", stack.admin_email, "--name", "public.e2e_bad_ts", "--table", H3_CELLS,
                      *args, check=False)
        assert r.returncode != 0 and needle in (r.stdout + r.stderr), (args, r.stdout, r.stderr)
    assert h.warehouse(stack, "SELECT to_regclass('public.e2e_bad_ts') IS NULL") == "t"
