"""Boundary sources as @carto/api-client's boundaryTableSource / boundaryQuerySource send them
(`/v3/maps/{conn}/boundary` with `tilesetTableName` and `propertiesTableName` or `propertiesSqlQuery`, plus
`columns`, `filters`, `queryParameters`): boundaries joined with their properties on `geoid`, served as
MVT. Values are checked against the same join in plain SQL."""
from __future__ import annotations

import json

import pytest

import helpers as h
from helpers import assert_error
from test_maps_api import Maps, _cli_token

BOUNDARIES, PROPS = "public.e2e_bnd", "public.e2e_bnd_props"


@pytest.fixture(scope="module")
def maps(stack):
    m = Maps(stack)
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS {BOUNDARIES}; DROP TABLE IF EXISTS {PROPS}; DROP TABLE IF EXISTS public.e2e_bnd_nogeoid;
        CREATE TABLE {BOUNDARIES} (geoid text, geom geometry(Polygon, 4326));
        INSERT INTO {BOUNDARIES} SELECT 'g' || i, ST_MakeEnvelope(i, 40, i + 0.9, 41, 4326) FROM generate_series(0, 5) i;
        CREATE TABLE {PROPS} (geoid text, population int, region text);
        INSERT INTO {PROPS} SELECT 'g' || i, 1000 * (i + 1), CASE WHEN i < 3 THEN 'west' ELSE 'east' END
        FROM generate_series(0, 4) i;  -- g5 has no properties: an inner join drops it
        CREATE TABLE public.e2e_bnd_nogeoid (id text, population int);
    """)
    return m


def expected(stack, where: str = "true") -> dict:
    rows = h.warehouse(stack, f"SELECT geoid, population FROM {BOUNDARIES} JOIN {PROPS} USING (geoid) WHERE {where}")
    return {g: float(p) for g, p in (r.split("|") for r in rows.splitlines())}


def got(maps, hs) -> dict:
    feats = maps.features(maps.tilejson(hs), 0, 0, 0)
    return {f.properties["geoid"]: f.properties["population"] for f in feats}


def test_boundary_table_source_joins_properties(stack, maps):
    hs = maps.source("boundary", {"tilesetTableName": BOUNDARIES, "propertiesTableName": PROPS,
                                  "columns": "geoid,population"})
    assert got(maps, hs) == expected(stack)
    assert len(expected(stack)) == 5


def test_boundary_query_source_with_parameters_and_filters(stack, maps):
    hs = maps.source("boundary", {"tilesetTableName": BOUNDARIES, "columns": "geoid,population,region",
                                  "propertiesSqlQuery": f"SELECT * FROM {PROPS} WHERE population >= $1",
                                  "queryParameters": json.dumps([2000]),
                                  "filters": json.dumps({"region": {"in": {"values": ["west"]}}})})
    assert got(maps, hs) == expected(stack, "population >= 2000 AND region = 'west'")


def test_boundary_bad_input_names_the_parameter(stack, maps):
    err = assert_error(maps.handshake("boundary", {"tilesetTableName": BOUNDARIES, "propertiesTableName": "public.e2e_bnd_nogeoid"},
                                      maps.star), 400, "column_not_found")
    assert "propertiesTableName" in err["error"] and "geoid" in err["error"]
    err = assert_error(maps.handshake("boundary", {"tilesetTableName": "public.e2e_bnd_nogeoid", "propertiesTableName": PROPS},
                                      maps.star), 400, "column_not_found")
    assert "tilesetTableName" in err["error"]
    err = assert_error(maps.handshake("boundary", {"tilesetTableName": BOUNDARIES, "propertiesSqlQuery": "SELECT 1 AS x"},
                                      maps.star), 400, "column_not_found")
    assert "propertiesSqlQuery" in err["error"]
    assert "propertiesTableName" in assert_error(maps.handshake("boundary", {"tilesetTableName": BOUNDARIES}, maps.star),
                                                 400, "missing_parameter")["error"]
    assert "tilesetTableName" in assert_error(maps.handshake("boundary", {"propertiesTableName": PROPS}, maps.star),
                                              400, "missing_parameter")["error"]


def test_scoped_token_needs_grants_for_both_sides(stack, maps):
    only_props = _cli_token(stack, PROPS)
    assert_error(maps.handshake("boundary", {"tilesetTableName": BOUNDARIES, "propertiesTableName": PROPS}, only_props), 403)
    both = _cli_token(stack, "public.*")
    hs = maps.source("boundary", {"tilesetTableName": BOUNDARIES, "propertiesTableName": PROPS}, token=both)
    assert got(maps, hs) == expected(stack)
