"""Data explorer listings (/api/v3/workspace/connections/{name}/...): schemas, tables with geometry
metadata, and one table's columns, counts and bounds, over the connection's own warehouse pool."""

from __future__ import annotations

import urllib.parse

import pytest

from helpers import assert_error, assert_ok

BASE = "/api/v3/workspace/connections/carto_dw"

FIXTURE = """
DROP SCHEMA IF EXISTS e2e_explore CASCADE;
CREATE SCHEMA e2e_explore;
CREATE TABLE e2e_explore.shapes (id integer, label text, geom geometry(Polygon, 3857));
INSERT INTO e2e_explore.shapes VALUES
    (1, 'a', ST_Transform(ST_MakeEnvelope(-10, -5, 0, 0, 4326), 3857)),
    (2, 'b', ST_Transform(ST_MakeEnvelope(5, 10, 20, 30, 4326), 3857));
CREATE TABLE e2e_explore."Mixed Case" (n integer);
INSERT INTO e2e_explore."Mixed Case" SELECT generate_series(1, 7);
CREATE TABLE e2e_explore.loose (g geometry);
INSERT INTO e2e_explore.loose VALUES (ST_SetSRID(ST_MakePoint(2, 3), 4326));
CREATE TABLE e2e_explore.tessera_import_123 (x integer);
CREATE VIEW e2e_explore.v AS SELECT id FROM e2e_explore.shapes;
ANALYZE e2e_explore.shapes;
"""


@pytest.fixture(scope="module")
def explore(dw):
    dw.sql(FIXTURE)
    return dw


def table_path(fqn: str) -> str:
    return f"{BASE}/tables/{urllib.parse.quote(fqn, safe='')}"


def test_schemas(api, admin, explore):
    r = api.get(f"{BASE}/schemas", token=admin.token)
    data = assert_ok(r)["data"]
    assert r.header("Cache-Control") == "no-store"
    names = [s["name"] for s in data]
    assert "public" in names and "e2e_explore" in names
    for hidden in ("information_schema", "pg_catalog", "pg_toast", "carto"):
        assert hidden not in names
    explore_schema = next(s for s in data if s["name"] == "e2e_explore")
    assert explore_schema["tables"] == 4  # shapes, "Mixed Case", loose, v (not the import staging table)


def test_tables_of_a_schema(api, admin, explore):
    data = assert_ok(api.get(f"{BASE}/schemas/e2e_explore/tables", token=admin.token))["data"]
    by_name = {t["name"]: t for t in data}
    assert sorted(by_name) == sorted(["Mixed Case", "loose", "shapes", "v"])
    shapes = by_name["shapes"]
    assert shapes["fqn"] == "e2e_explore.shapes" and shapes["rows"] == 2
    assert (shapes["geometryColumn"], shapes["geometryType"], shapes["srid"]) == ("geom", "POLYGON", 3857)
    assert by_name["Mixed Case"]["fqn"] == 'e2e_explore."Mixed Case"' and by_name["Mixed Case"]["geometryColumn"] is None
    public = {t["name"] for t in assert_ok(api.get(f"{BASE}/schemas/public/tables", token=admin.token))["data"]}
    assert "e2e_places" in public and "spatial_ref_sys" not in public


def test_table_detail(api, admin, explore):
    t = assert_ok(api.get(table_path("e2e_explore.shapes"), token=admin.token))
    assert t["name"] == "shapes" and t["fqn"] == "e2e_explore.shapes"
    assert t["rows"] == 2 and t["rowsExact"] is True
    assert t["columns"] == [{"name": "id", "type": "integer", "kind": "number"},
                            {"name": "label", "type": "text", "kind": "string"},
                            {"name": "geom", "type": "geometry(Polygon,3857)", "kind": "geometry"}]
    assert (t["geometryColumn"], t["geometryType"], t["srid"]) == ("geom", "POLYGON", 3857)
    # Bounds come back in WGS84 whatever the column's SRID.
    assert [round(v, 6) for v in t["bounds"]] == [-10, -5, 20, 30]

    mixed = assert_ok(api.get(table_path('e2e_explore."Mixed Case"'), token=admin.token))
    assert mixed["rows"] == 7 and mixed["geometryColumn"] is None and mixed["bounds"] is None

    # An unconstrained geometry column is described from its data.
    loose = assert_ok(api.get(table_path("e2e_explore.loose"), token=admin.token))
    assert (loose["geometryType"], loose["srid"]) == ("POINT", 4326) and loose["bounds"] == [2, 3, 2, 3]

    # A bare name is a table in public.
    places = assert_ok(api.get(table_path("e2e_places"), token=admin.token))
    assert places["fqn"] == "public.e2e_places" and places["rows"] == 4


def test_offline_basemap_is_loaded(api, admin):
    t = assert_ok(api.get(table_path("public.world_countries"), token=admin.token))
    assert t["rows"] == 177 and t["rowsExact"] is True
    assert (t["geometryColumn"], t["geometryType"], t["srid"]) == ("geom", "MULTIPOLYGON", 4326)
    assert {c["name"] for c in t["columns"]} >= {"cartodb_id", "name", "continent", "iso_a3", "pop_est", "geom"}
    west, south, east, north = (round(v, 6) for v in t["bounds"])
    assert west == -180 and east == 180 and south == -90 and 80 < north < 84


def test_session_user_may_explore(api, admin, explore):
    # A browser session reads listings too (GET: no CSRF header needed).
    r = api.get(f"{BASE}/schemas/e2e_explore/tables", session=admin.session)
    assert len(assert_ok(r)["data"]) == 4


@pytest.mark.parametrize("path, code", [
    ("/api/v3/workspace/connections/no_such_conn/schemas", "connection_not_found"),
    (f"{BASE}/schemas/no_such_schema/tables", "schema_not_found"),
    (f"{BASE}/schemas/pg_catalog/tables", "schema_not_found"),
    (f"{BASE}/schemas/carto/tables", "schema_not_found"),
    (table_path("e2e_explore.nope"), "table_not_found"),
    (table_path("pg_catalog.pg_class"), "table_not_found"),
    (table_path("e2e_explore.tessera_import_123"), "table_not_found"),
    (table_path("a.b.c"), "table_not_found"),
    (table_path('e2e_explore."x'), "table_not_found"),
])
def test_not_found(api, admin, explore, path, code):
    assert_error(api.get(path, token=admin.token), 404, code)


def test_access(api, admin, other_org, full_token, explore):
    assert_error(api.get(f"{BASE}/schemas"), 401)
    assert_error(api.get(f"{BASE}/schemas", token=full_token), 403, "user_token_required")
    # Another organisation has no connection of that name (its own carto_dw does not exist).
    assert_error(api.get(f"{BASE}/schemas", token=other_org.token), 404, "connection_not_found")


def test_warehouse_without_postgis(api, admin, explore, dw_user):
    """A connection to a database without PostGIS lists tables with no geometry instead of failing."""
    name = "e2e_no_postgis"
    body = {"name": name, **dw_user, "database": "postgres"}
    created = assert_ok(api.post("/api/v3/connections", token=admin.token, json_body=body), 201)
    try:
        base = f"/api/v3/workspace/connections/{name}"
        assert "public" in [s["name"] for s in assert_ok(api.get(f"{base}/schemas", token=admin.token))["data"]]
        assert assert_ok(api.get(f"{base}/schemas/public/tables", token=admin.token))["data"] == []
        assert_error(api.get(f"{base}/tables/public.e2e_places", token=admin.token), 404, "table_not_found")
    finally:
        assert api.delete(f"/api/v3/connections/{created['id']}", token=admin.token).status == 204
