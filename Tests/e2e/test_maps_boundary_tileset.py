"""Boundary sources over a pre-generated boundary tileset (`tessera tileset create --boundary`): the client
sends the tileset's name as `tilesetTableName` with `propertiesTableName` or `propertiesSqlQuery`; tiles are
the stored boundary pieces joined with the properties when asked for. Values are checked against the same
join in plain SQL, geometry against the boundaries' own coordinates, and a change of properties shows
without re-tiling."""
from __future__ import annotations

import json

import pytest

import helpers as h
import mvt
from helpers import assert_error
from test_maps_api import Maps

BOUNDARIES, PROPS, TILESET = "public.e2e_bts_src", "public.e2e_bts_props", "public.e2e_bts_tiles"
MAXZOOM = 6


@pytest.fixture(scope="module")
def maps(stack):
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS {BOUNDARIES}; DROP TABLE IF EXISTS {PROPS}; DROP TABLE IF EXISTS public.e2e_bts_nogeoid;
        CREATE TABLE {BOUNDARIES} (geoid text, geom geometry(Polygon, 4326));
        INSERT INTO {BOUNDARIES} SELECT 'g' || i, ST_MakeEnvelope(i * 2, 40, i * 2 + 1.5, 42, 4326) FROM generate_series(0, 5) i;
        CREATE TABLE {PROPS} (geoid text, population int, region text);
        INSERT INTO {PROPS} SELECT 'g' || i, 1000 * (i + 1), CASE WHEN i < 3 THEN 'west' ELSE 'east' END
        FROM generate_series(0, 4) i;  -- g5 has no properties: an inner join drops it
        CREATE TABLE public.e2e_bts_nogeoid (id text, population int);
    """)
    h.tessera(stack, "tileset", "create", "--email", stack.admin_email, "--name", TILESET, "--table", BOUNDARIES,
              "--boundary", "--maxzoom", str(MAXZOOM))
    return Maps(stack)


def expected(stack, z: int, x: int, y: int, where: str = "true") -> dict:
    """geoid → population of the joined boundaries within the tile (grown by the tile buffer, 1/16)."""
    rows = h.warehouse(stack, f"""
        SELECT geoid, population FROM {BOUNDARIES} JOIN {PROPS} USING (geoid)
        WHERE ST_Intersects(ST_Transform(geom, 3857), ST_Expand(ST_TileEnvelope({z}, {x}, {y}), 40075016.68557849 / 2 ^ {z} / 16))
          AND {where}""")
    return {g: float(p) for g, p in (r.split("|") for r in rows.splitlines())}


def got(maps, tj, z, x, y) -> dict:
    return {f.properties["geoid"]: f.properties["population"] for f in maps.features(tj, z, x, y)}


def test_tileset_pieces_joined_with_a_properties_table(stack, maps):
    hs = maps.source("boundary", {"tilesetTableName": TILESET, "propertiesTableName": PROPS, "columns": "geoid,population"})
    assert {c["name"] for c in hs["schema"]} >= {"geoid", "population"}
    tj = maps.tilejson(hs)
    assert (tj["minzoom"], tj["maxzoom"]) == (0, MAXZOOM)
    assert set(tj["vector_layers"][0]["fields"]) == {"geoid", "population"}
    for z, x, y in [(0, 0, 0), (3, 4, 3), (6, 32, 24), (6, 33, 24), (6, 31, 24)]:
        assert got(maps, tj, z, x, y) == expected(stack, z, x, y), (z, x, y)
    assert len(expected(stack, 0, 0, 0)) == 5
    # The geometry is the boundary's: g1's corners, read back from the z6 tile, are its envelope's (within a pixel).
    [g1] = [f for f in maps.features(tj, 6, 32, 24) if f.properties["geoid"] == "g1"]
    lons = [mvt.to_lonlat(6, 32, 24, 4096, px, py)[0] for px, py in g1.points]
    lats = [mvt.to_lonlat(6, 32, 24, 4096, px, py)[1] for px, py in g1.points]
    pixel = 360 / 2 ** 6 / 4096
    assert abs(min(lons) - 2) < 2 * pixel and abs(max(lons) - 3.5) < 2 * pixel
    # g1 reaches 42°N, past this tile's north edge: clipped in the tile's buffer, beyond the edge.
    north = mvt.to_lonlat(6, 32, 24, 4096, 0, 0)[1]
    assert abs(min(lats) - 40) < 0.01 and north < max(lats) < 42
    # Past the tileset's zooms: nothing.
    assert maps.tile(tj, MAXZOOM + 1, 65, 48).status == 204


def test_query_properties_filters_and_fresh_properties_without_retiling(stack, maps):
    hs = maps.source("boundary", {"tilesetTableName": TILESET, "columns": "geoid,population,region",
                                  "propertiesSqlQuery": f"SELECT * FROM {PROPS} WHERE population >= $1",
                                  "queryParameters": json.dumps([2000]),
                                  "filters": json.dumps({"region": {"in": {"values": ["west"]}}})})
    tj = maps.tilejson(hs)
    assert got(maps, tj, 0, 0, 0) == expected(stack, 0, 0, 0, "population >= 2000 AND region = 'west'") == {"g1": 2000.0, "g2": 3000.0}
    h.warehouse(stack, f"UPDATE {PROPS} SET population = 7777 WHERE geoid = 'g1'")
    try:
        # The data version PostgreSQL's table counters give reaches the handshake once the update's stats are flushed.
        def fresh():
            tj = maps.tilejson(maps.source("boundary", {"tilesetTableName": TILESET, "propertiesTableName": PROPS,
                                                        "columns": "geoid,population"}))
            return got(maps, tj, 0, 0, 0)["g1"] == 7777
        h.wait_until(fresh, 30, 0.5)
    finally:
        h.warehouse(stack, f"UPDATE {PROPS} SET population = 2000 WHERE geoid = 'g1'")


def test_bad_boundary_tileset_input_names_the_parameter(stack, maps):
    err = assert_error(maps.handshake("boundary", {"tilesetTableName": TILESET, "propertiesTableName": "public.e2e_bts_nogeoid"},
                                      maps.star), 400, "column_not_found")
    assert "propertiesTableName" in err["error"] and "geoid" in err["error"]
    err = assert_error(maps.handshake("boundary", {"tilesetTableName": TILESET, "propertiesSqlQuery": "SELECT 1 AS x"},
                                      maps.star), 400, "column_not_found")
    assert "propertiesSqlQuery" in err["error"]
    err = assert_error(maps.handshake("boundary", {"tilesetTableName": TILESET, "propertiesTableName": PROPS, "columns": "nope"},
                                      maps.star), 400, "column_not_found")
    assert err["column_name"] == "nope"
    # A vector tileset (no boundary pieces) named as the boundary tileset.
    h.tessera(stack, "tileset", "create", "--email", stack.admin_email, "--name", "public.e2e_bts_vector", "--table", BOUNDARIES,
              "--maxzoom", "1")
    err = assert_error(maps.handshake("boundary", {"tilesetTableName": "public.e2e_bts_vector", "propertiesTableName": PROPS},
                                      maps.star), 400, "invalid_source")
    assert err["error"].startswith("tilesetTableName:")
    # The builder refuses a source without geoid.
    r = h.tessera(stack, "tileset", "create", "--email", stack.admin_email, "--name", "public.e2e_bts_bad", "--table",
                  "public.e2e_bts_nogeoid", "--boundary", check=False)
    assert r.returncode != 0 and "geoid" in r.stderr
