"""Pre-generated tilesets (`tessera tileset create`, type=tileset) and quadbin sources
(spatialDataType=quadbin, `{i}` tiles) through the real binaries."""
from __future__ import annotations

import pytest

import helpers as h
import mvt
from helpers import assert_error, assert_ok
from test_maps_api import Maps, _cli_token

TILESET = "public.e2e_ts_tiles"
# (name, value, lon, lat): two points in the same z2 tile (Iberia), one far away.
POINTS = [("Madrid", 10, -3.70, 40.42), ("Lisbon", 20, -9.14, 38.72), ("Tokyo", 40, 139.69, 35.69)]


@pytest.fixture(scope="module")
def maps(stack):
    m = Maps(stack)
    values = ", ".join(f"('{n}', {v}, ST_SetSRID(ST_MakePoint({x}, {y}), 4326))" for n, v, x, y in POINTS)
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS e2e_ts_src; DROP TABLE IF EXISTS e2e_qb;
        CREATE TABLE e2e_ts_src (name text, value int, geom geometry(Point, 4326));
        INSERT INTO e2e_ts_src VALUES {values};
        CREATE TABLE e2e_qb AS SELECT carto.quadbin_frompoint(geom, 10) AS quadbin, value FROM e2e_ts_src;
        CREATE INDEX ON e2e_qb (quadbin);
    """)
    return m


def test_quadbin_functions_match_the_reference_encoding(stack, maps):
    # Vectors from CARTO's quadbin reference package: tile (x=5, y=3, z=4), the world cell, z26 corner.
    got = h.warehouse(stack, "SELECT to_hex(carto.quadbin_fromzxy(4, 5, 3)) || ',' || to_hex(carto.quadbin_fromzxy(0, 0, 0))"
                             " || ',' || to_hex(carto.quadbin_fromzxy(26, 67108863, 67108863))"
                             " || ',' || to_hex(carto.quadbin_toparent(carto.quadbin_fromlonglat(-3.7, 40.4, 10), 4))")
    assert got == "4841bfffffffffff,480fffffffffffff,49afffffffffffff,4843dfffffffffff"
    z, x, y = h.warehouse(stack, "SELECT z, x, y FROM carto.quadbin_tozxy(x'4841bfffffffffff'::bigint)").split("|")
    assert (z, x, y) == ("4", "5", "3")


def test_tileset_create_and_serve(stack, maps):
    out = stack.tessera("tileset", "create", "--email", stack.admin_email, "--name", TILESET, "--table", "e2e_ts_src",
                        "--maxzoom", "4")
    assert "tiles" in out
    body = maps.source("tileset", {"name": TILESET})
    assert body["nrows"] == 3
    assert {c["name"] for c in body["schema"]} >= {"name", "value"}
    tj = maps.tilejson(body)
    assert tj["tilejson"] == "3.0.0" and (tj["minzoom"], tj["maxzoom"]) == (0, 4)
    assert "formatTiles=mvt" in tj["tiles"][0]
    names = {f.properties["name"] for f in maps.features(tj, 0, 0, 0)}
    assert names == {"Madrid", "Lisbon", "Tokyo"}
    # Madrid and Lisbon share the z2 tile 1/1; Tokyo is in 3/1.
    assert {f.properties["name"] for f in maps.features(tj, 2, 1, 1)} == {"Madrid", "Lisbon"}
    assert maps.tile(tj, 2, 0, 0).status == 204
    assert maps.tile(tj, 5, 15, 11).status == 204, "beyond the generated zooms"


def test_tileset_grants_and_unknown_names(stack, maps):
    other = _cli_token(stack, "public.e2e_maps_points")
    assert_error(maps.handshake("tileset", {"name": TILESET}, other), 403, "source_not_granted")
    assert_error(maps.handshake("tileset", {"name": "public.no_such_tileset"}, maps.star), 404, "tileset_not_found")


def test_quadbin_source_aggregates_cells(stack, maps):
    body = maps.source("table", {"name": "e2e_qb", "spatialDataType": "quadbin", "spatialDataColumn": "quadbin",
                                 "aggregationExp": "sum(value) AS value", "aggregationResLevel": "4"})
    tj = maps.tilejson(body)
    assert tj["scheme"] == "quadbin" and tj["maxresolution"] == 6
    # tilestats attributes over the cells at the center's zoom plus the level (2 + 4): one point each.
    attrs = tj["tilestats"]["layers"][0]["attributes"]
    assert [(a["attribute"], a["type"], a["min"], a["max"], a["sum"]) for a in attrs] == [("value", "Number", 10, 40, 70)]
    template = maps.local(tj["tiles"][0])
    assert "{i}" in template and "formatTiles=json" in template
    cell = h.warehouse(stack, "SELECT lpad(to_hex(carto.quadbin_fromzxy(2, 1, 1)), 16, '0')")
    r = maps.api.get(template.replace("{i}", cell), token=maps.star)
    cells = assert_ok(r)
    assert r.header("Content-Type") == "application/json"
    want = dict(line.split("|") for line in h.warehouse(stack, """
        SELECT lpad(to_hex(carto.quadbin_toparent(quadbin, 6)), 16, '0'), sum(value) FROM e2e_qb
        WHERE carto.quadbin_toparent(quadbin, 2) = carto.quadbin_fromzxy(2, 1, 1) GROUP BY 1""").splitlines())
    assert {c["id"]: str(c["properties"]["value"]) for c in cells} == want
    assert sum(c["properties"]["value"] for c in cells) == 30
    empty = h.warehouse(stack, "SELECT lpad(to_hex(carto.quadbin_fromzxy(2, 0, 0)), 16, '0')")
    assert maps.api.get(template.replace("{i}", empty), token=maps.star).status == 204


@pytest.mark.parametrize("cell", ["zzzz", "ffffffffffffffff", "4841bfffffffff00", "1" * 17])
def test_hostile_quadbin_cells(maps, cell):
    body = maps.source("table", {"name": "e2e_qb", "spatialDataType": "quadbin", "spatialDataColumn": "quadbin",
                                 "aggregationExp": "count(*) AS n"})
    template = maps.local(maps.tilejson(body)["tiles"][0])
    assert_error(maps.api.get(template.replace("{i}", cell), token=maps.star), 400, "invalid_tile")


def test_quadbin_needs_an_aggregation(maps):
    assert_error(maps.handshake("table", {"name": "e2e_qb", "spatialDataType": "quadbin", "spatialDataColumn": "quadbin"},
                                maps.star), 400, "missing_parameter")
