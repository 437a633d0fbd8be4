"""H3 sources (h3TableSource / h3QuerySource): dynamic aggregation of point columns into H3 cells and
sources over H3 cell-id columns (hex text and bigint), tiled as deck.gl's H3 tile layer asks (`{i}` is an H3
cell; the answer is the data cells under it). Every cell's values are compared with the same grouping done
in plain SQL with the carto.h3_* functions."""
from __future__ import annotations

import pytest

import helpers as h
from helpers import assert_error
from test_maps_api import Maps
from test_models import Models, cli_token

TABLE = "public.e2e_h3_points"
CELLS = "public.e2e_h3_cells"
N = 20000


@pytest.fixture(scope="module")
def maps(stack):
    m = Maps(stack)
    # Deterministic points over Europe, with a value to sum; cells of them at resolution 4 (fewer cells than points) as text and bigint.
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS {TABLE}; DROP TABLE IF EXISTS {CELLS};
        CREATE TABLE {TABLE} (id int, value int, kind text, geom geometry(Point, 4326));
        INSERT INTO {TABLE}
        SELECT i, i % 7, CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END,
               ST_SetSRID(ST_MakePoint(-10 + 40 * ((i * 7919) % 10007) / 10007.0, 35 + 25 * ((i * 104729) % 9973) / 9973.0), 4326)
        FROM generate_series(1, {N}) i;
        CREATE INDEX ON {TABLE} USING gist (geom);
        ANALYZE {TABLE};
        CREATE TABLE {CELLS} AS
          SELECT carto.h3_fromgeogpoint(geom, 4) AS h3, carto.h3_fromgeogpoint_int(geom, 4) AS h3int,
                 sum(value)::int AS value, count(*)::int AS n
          FROM {TABLE} GROUP BY 1, 2;
        -- One coarser cell (resolution 3): left out of cells finer than it, never an error.
        INSERT INTO {CELLS} SELECT carto.h3_fromlonglat(2, 46, 3), carto.h3_fromlonglat_int(2, 46, 3), 5, 1;
    """)
    return m


def tile_of(stack, resolution: int, lon: float = 2.0, lat: float = 46.0) -> str:
    return h.warehouse(stack, f"SELECT carto.h3_fromlonglat({lon}, {lat}, {resolution})")


def expected_points(stack, resolution: int, tile: str, where: str = "TRUE") -> dict:
    """{cell: (count, sum)} of the points under the H3 cell `tile`, grouped at `resolution`, in plain SQL."""
    rows = h.warehouse(stack, f"""
        SELECT carto.h3_fromgeogpoint(geom, {resolution}) AS c, count(*), sum(value) FROM {TABLE} WHERE {where}
        GROUP BY 1 HAVING carto.h3_toparent(carto.h3_fromgeogpoint(geom, {resolution}), carto.h3_resolution('{tile}'::text)) = '{tile}'""")
    return {c: (int(n), int(s)) for c, n, s in (line.split("|") for line in rows.splitlines())}


def expected_cells(stack, resolution: int, tile: str) -> dict:
    rows = h.warehouse(stack, f"""
        SELECT carto.h3_toparent(h3, {resolution}) AS c, sum(n), sum(value)
        FROM (SELECT * FROM {CELLS} WHERE carto.h3_resolution(h3) >= {resolution} OFFSET 0) s
        GROUP BY 1 HAVING carto.h3_toparent(carto.h3_toparent(h3, {resolution}), carto.h3_resolution('{tile}'::text)) = '{tile}'""")
    return {c: (int(n), int(s)) for c, n, s in (line.split("|") for line in rows.splitlines())}


def cells(maps, tj, tile: str) -> dict:
    return h.cell_tile(maps, tj, tile)


AGG = {"spatialDataType": "h3", "spatialDataColumn": "geom", "aggregationExp": "count(*) AS n, sum(value) AS total"}


def test_points_aggregate_into_h3_cells_per_tile(stack, maps):
    body = maps.source("table", {"name": TABLE, **AGG, "aggregationResLevel": "3"})
    tj = maps.tilejson(body)
    assert tj["scheme"] == "h3" and "{i}" in tj["tiles"][0] and "spatialIndex=h3" in tj["tiles"][0]
    # tilestats attributes over the cells at resolution 0 + level.
    want = h.warehouse(stack, f"""
        SELECT min(n), max(n), sum(n) FROM (SELECT count(*) AS n FROM {TABLE} GROUP BY carto.h3_fromgeogpoint(geom, 3)) c""").split("|")
    attrs = {a["attribute"]: a for a in tj["tilestats"]["layers"][0]["attributes"]}
    assert set(attrs) == {"n", "total"}
    assert [attrs["n"][k] for k in ("min", "max", "sum")] == [float(v) for v in want]
    for resolution in (0, 2, 4):
        tile = tile_of(stack, resolution)
        got = cells(maps, tj, tile)
        want = expected_points(stack, resolution + 3, tile)
        assert got == want and len(got) > 1, f"tile {tile}"
    # Ids are H3 hex strings at tile resolution + level.
    tile = tile_of(stack, 2)
    assert {h.warehouse(stack, f"SELECT carto.h3_resolution('{c}'::text)") for c in cells(maps, tj, tile)} == {"5"}


def test_filters_query_sources_and_reference_resolution(stack, maps):
    tile = tile_of(stack, 3)
    filtered = maps.tilejson(maps.source("table", {"name": TABLE, **AGG, "filters": '{"kind": {"in": {"values": ["a"]}}}'}))
    assert cells(maps, filtered, tile) == expected_points(stack, 7, tile, "kind = 'a'")  # the client's default level: 4
    q = f"SELECT id, value, ST_Transform(geom, 3857) AS geom FROM {TABLE} WHERE id % 2 = 0"
    tj = maps.tilejson(maps.source("query", {"q": q, **AGG, "aggregationResLevel": "2"}))
    assert cells(maps, tj, tile) == expected_points(stack, 5, tile, "id % 2 = 0")
    capped = maps.tilejson(maps.source("table", {"name": TABLE, **AGG, "spatialIndexReferenceResolution": "5"}))
    assert cells(maps, capped, tile) == expected_points(stack, 5, tile)
    assert cells(maps, capped, tile_of(stack, 6)) == {}, "tiles finer than the reference resolution are empty"


@pytest.mark.parametrize("column", ["h3", "h3int"])
def test_cell_column_sources(stack, maps, column):
    body = maps.source("table", {"name": CELLS, "spatialDataType": "h3", "spatialDataColumn": column,
                                 "aggregationExp": "sum(n) AS n, sum(value) AS total", "aggregationResLevel": "2"})
    tj = maps.tilejson(body)
    assert tj["scheme"] == "h3" and tj["maxresolution"] == 2
    for resolution in (0, 1, 2, 4):
        tile = tile_of(stack, resolution)
        got = cells(maps, tj, tile)
        assert got == expected_cells(stack, min(resolution + 2, 4), tile) and got, f"tile {tile}"
    assert cells(maps, tj, tile_of(stack, 5)) == {}, "tiles finer than the data are empty"


def test_bad_input(stack, maps):
    tj = maps.tilejson(maps.source("table", {"name": TABLE, **AGG}))
    template = maps.local(tj["tiles"][0])
    for bad in ["zz", "8a1fb46622dffff0", "8f1fb46622d8fff", "4841bffffffffff"]:
        assert_error(maps.api.get(template.replace("{i}", bad), token=maps.star), 400, "invalid_tile")
    err = assert_error(maps.handshake("table", {"name": TABLE, **AGG, "spatialIndexReferenceResolution": "16"}, maps.star), 400)
    assert "spatialIndexReferenceResolution" in err["error"]
    err = assert_error(maps.handshake("table", {"name": TABLE, **AGG, "spatialDataColumn": "kind"}, maps.star), 400, "invalid_parameter")
    assert "kind" in err["error"] and "H3" in err["error"]


# ---------------------------------------------------------------------------------------------
# widgets on h3 sources: no spatial filter, the viewport polygon (each spatialFiltersMode), selected cells

VIEWPORT = {"type": "Polygon", "coordinates": [[[-2.3, 43.1], [7.9, 43.1], [7.9, 49.6], [-2.3, 49.6], [-2.3, 43.1]]]}
ENVELOPE = "ST_MakeEnvelope(-2.3, 43.1, 7.9, 49.6, 4326)"
MODE_SQL = {
    "intersects": f"ST_Intersects(carto.h3_boundary(h3), {ENVELOPE})",
    "center": f"ST_Intersects(carto.h3_center(h3), {ENVELOPE})",
    "contains": f"ST_Contains({ENVELOPE}, carto.h3_boundary(h3))",
}


@pytest.fixture(scope="module")
def widgets(stack, api, maps):
    return Models(stack, api), cli_token(stack, "*")


def widget(widgets, model, params, spatial=None, column="h3", **extra):
    m, token = widgets
    fields = {"spatialFilters": {column: spatial}} if spatial is not None else {}
    return m.ok(model, token, method="POST", source=CELLS, params=params, spatialDataType="h3",
                spatialDataColumn=column, **fields, **extra)


def plain(stack, select: str, where: str = "TRUE") -> list[str]:
    return h.warehouse(stack, f"SELECT {select} FROM {CELLS} WHERE {where}").split("|")


@pytest.mark.parametrize("column", ["h3", "h3int"])
@pytest.mark.parametrize("mode", [None, "intersects", "center", "contains"])
def test_h3_widgets_with_the_viewport(stack, widgets, mode, column):
    where = MODE_SQL[mode] if mode else "TRUE"
    spatial = VIEWPORT if mode else None
    n, total, lo, hi = plain(stack, "count(*), sum(value), min(value), max(value)", where)
    assert int(n) > 10, "the viewport must hold cells"
    extra = {"spatialFiltersMode": mode} if mode and mode != "intersects" else {}
    assert widget(widgets, "formula", {"operation": "count"}, spatial, column, **extra) == {"rows": [{"value": int(n)}]}
    assert widget(widgets, "formula", {"column": "value", "operation": "sum"}, spatial, column, **extra) == {"rows": [{"value": int(total)}]}
    assert widget(widgets, "range", {"column": "value"}, spatial, column, **extra) == {"rows": [{"min": int(lo), "max": int(hi)}]}
    doc = widget(widgets, "category", {"column": "n", "operation": "count"}, spatial, column, **extra)
    want = h.warehouse(stack, f"SELECT n, count(*) FROM {CELLS} WHERE {where} GROUP BY n").splitlines()
    assert {(r["name"], r["value"]) for r in doc["rows"]} == {(int(a), int(b)) for a, b in (x.split("|") for x in want)}
    doc = widget(widgets, "histogram", {"column": "value", "operation": "count", "ticks": [10, 20]}, spatial, column, **extra)
    assert sum(r["value"] for r in doc["rows"]) == int(n)
    doc = widget(widgets, "table", {"column": ["value"], "sortBy": "value", "limit": 1}, spatial, column, **extra)
    assert doc["metadata"]["total"] == int(n)
    doc = widget(widgets, "aggregations", {"aggregations": [{"column": "value", "operation": "sum", "alias": "t"}]}, spatial, column, **extra)
    assert doc == {"rows": [{"t": int(total)}]}
    doc = widget(widgets, "scatterplot", {"xAxisColumn": "value", "yAxisColumn": "n", "limit": 100000}, spatial, column, **extra)
    assert len(doc["rows"]) == int(n)


@pytest.mark.parametrize("column,kind", [("h3", "h3"), ("h3int", "h3int")])
def test_h3_widgets_with_selected_cells(stack, widgets, column, kind):
    # One cell of the data's resolution and a coarser one (its descendants count).
    fine, coarse = h.warehouse(stack, f"SELECT min(h3), carto.h3_toparent(max(h3), 2) FROM {CELLS} WHERE carto.h3_resolution(h3) = 4").split("|")
    n, total = plain(stack, "count(*), sum(value)", f"h3 = '{fine}' OR carto.h3_toparent(h3, 2) = '{coarse}'")
    assert int(n) >= 2
    indexes = [fine, coarse] if kind == "h3" else [h.warehouse(stack, f"SELECT carto.h3_string_toint('{c}')") for c in (fine, coarse)]
    spatial = {"type": kind, "indexes": indexes}
    assert widget(widgets, "formula", {"operation": "count"}, spatial, column) == {"rows": [{"value": int(n)}]}
    assert widget(widgets, "formula", {"column": "value", "operation": "sum"}, spatial, column) == {"rows": [{"value": int(total)}]}
    # The data's one resolution-3 cell selects itself and the resolution-4 rows under it.
    r3 = h.warehouse(stack, f"SELECT h3 FROM {CELLS} WHERE carto.h3_resolution(h3) = 3")
    n = plain(stack, "count(*)", f"h3 = '{r3}' OR carto.h3_toparent(h3, 3) = '{r3}'")[0]
    assert int(n) > 1
    r3 = r3 if kind == "h3" else h.warehouse(stack, f"SELECT carto.h3_string_toint('{r3}')")
    assert widget(widgets, "formula", {"operation": "count"}, {"type": kind, "indexes": [r3]}, column) == {"rows": [{"value": int(n)}]}


def test_h3_widgets_on_a_point_source(stack, widgets):
    # hexbin layers' widgets: the h3 source is over the points themselves, so the viewport filters points.
    m, token = widgets
    n, total = h.warehouse(stack, f"SELECT count(*), sum(value) FROM {TABLE} WHERE ST_Intersects(geom, {ENVELOPE})").split("|")
    assert int(n) > 100
    for params, want in [({"operation": "count"}, int(n)), ({"column": "value", "operation": "sum"}, int(total))]:
        doc = m.ok("formula", token, method="POST", source=TABLE, params=params, spatialDataType="h3", spatialDataColumn="geom",
                   spatialFilters={"geom": VIEWPORT})
        assert doc == {"rows": [{"value": want}]}


@pytest.mark.parametrize("spatial", [
    {"type": "h3", "indexes": ["8a2a1072b59ffff0"]},
    {"type": "h3", "indexes": ["zz"]},
    {"type": "h3", "indexes": "8a2a1072b59ffff"},
    {"type": "h3", "indexes": [1, 2]},
    {"type": "quadbin", "indexes": ["4841bfffffffffff"]},
])
def test_bad_h3_spatial_filters(widgets, spatial):
    m, token = widgets
    r = m.call("formula", token, method="POST", source=CELLS, params={"operation": "count"}, spatialDataType="h3",
               spatialDataColumn="h3", spatialFilters={"h3": spatial})
    err = assert_error(r, 400, "invalid_spatial_filter")
    assert "spatialFilters" in err["error"]


def test_without_the_extension_h3_says_what_to_install(stack, maps, widgets):
    h.warehouse(stack, "DROP EXTENSION tessera_h3")
    try:
        for d in (AGG, {"spatialDataType": "h3", "spatialDataColumn": "h3", "aggregationExp": "sum(n) AS n"}):
            name = TABLE if d is AGG else CELLS
            err = assert_error(maps.handshake("table", {"name": name, **d}, maps.star), 400, "h3_unavailable")
            assert "postgresql-15-tessera-h3" in err["error"]
        m, token = widgets
        r = m.call("formula", token, method="POST", source=CELLS, params={"operation": "count"}, spatialDataType="h3",
                   spatialDataColumn="h3", spatialFilters={"h3": VIEWPORT})
        assert "postgresql-15-tessera-h3" in assert_error(r, 400, "h3_unavailable")["error"]
    finally:
        h.warehouse(stack, "CREATE EXTENSION tessera_h3")
