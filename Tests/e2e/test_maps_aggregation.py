"""Dynamic aggregation of point geometry columns into quadbin cells per tile (quadbinTableSource /
quadbinQuerySource over a geometry column, as deck.gl's heatmap/grid layers use them), and the 400s of bad
aggregation input. Every cell's values are compared with the same grouping done in plain SQL."""
from __future__ import annotations

import pytest

import helpers as h
from helpers import assert_error, assert_ok
from test_maps_api import Maps, _cli_token
from test_models import Models, cli_token

TABLE = "public.e2e_agg_points"
N = 20000


@pytest.fixture(scope="module")
def maps(stack):
    m = Maps(stack)
    # Deterministic points spread over Europe (and a few on a z3 tile edge), with a value to sum.
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS {TABLE}; DROP TABLE IF EXISTS public.e2e_agg_lines;
        CREATE TABLE {TABLE} (id int, value int, kind text, geom geometry(Point, 4326));
        INSERT INTO {TABLE}
        SELECT i, i % 7, CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END,
               ST_SetSRID(ST_MakePoint(-10 + 40 * ((i * 7919) % 10007) / 10007.0, 35 + 25 * ((i * 104729) % 9973) / 9973.0), 4326)
        FROM generate_series(1, {N}) i;
        INSERT INTO {TABLE} VALUES ({N} + 1, 5, 'a', ST_SetSRID(ST_MakePoint(0, 40.97989806962013), 4326)),
                                   ({N} + 2, 6, 'a', ST_SetSRID(ST_MakePoint(0, 0), 4326));
        CREATE INDEX ON {TABLE} USING gist (geom);
        ANALYZE {TABLE};
        DROP TABLE IF EXISTS public.e2e_agg_cells;
        CREATE TABLE public.e2e_agg_cells AS
          SELECT carto.quadbin_frompoint(geom, 10) AS quadbin, sum(value)::int AS value, count(*)::int AS n
          FROM {TABLE} GROUP BY 1;
        CREATE TABLE public.e2e_agg_lines AS SELECT id, ST_MakeLine(geom, ST_Translate(geom, 1, 1)) AS geom FROM {TABLE} LIMIT 5;
    """)
    return m


def cell_hex(stack, z, x, y) -> str:
    return h.warehouse(stack, f"SELECT lpad(to_hex(carto.quadbin_fromzxy({z}, {x}, {y})), 16, '0')")


def expected(stack, resolution: int, z: int, x: int, y: int, where: str = "TRUE", source: str = TABLE) -> dict:
    """{cell id: (count, sum)} of the points in tile z/x/y grouped at `resolution`, in plain SQL."""
    rows = h.warehouse(stack, f"""
        SELECT lpad(to_hex(c), 16, '0'), count(*), sum(value) FROM (
          SELECT carto.quadbin_frompoint(geom, {resolution}) AS c, value FROM {source} AS s WHERE {where}) t
        WHERE carto.quadbin_toparent(c, {z}) = carto.quadbin_fromzxy({z}, {x}, {y})
        GROUP BY 1""")
    return {cell: (int(n), int(s)) for cell, n, s in (line.split("|") for line in rows.splitlines())}


def cells(maps, tj, z, x, y) -> dict:
    return h.cell_tile(maps, tj, cell_hex(maps.stack, z, x, y))


AGG = {"spatialDataType": "quadbin", "spatialDataColumn": "geom", "aggregationExp": "count(*) AS n, sum(value) AS total"}


def test_table_source_aggregates_points_per_tile(stack, maps):
    body = maps.source("table", {"name": TABLE, **AGG, "aggregationResLevel": "4"})
    # The client reads the schema to tell widgets the column is a geometry (getWidgetSpatialDataType).
    assert {c["name"]: c["type"] for c in body["schema"]}["geom"] == "geometry"
    tj = maps.tilejson(body)
    assert tj["scheme"] == "quadbin" and "{i}" in tj["tiles"][0]
    # tilestats attributes (fetchMap's colour domains): over the cells shown at the center's zoom (2 + level 4).
    assert tj["center"][2] == 2
    want = h.warehouse(stack, f"""
        SELECT min(n), max(n), sum(n), min(t), max(t), sum(t) FROM (
          SELECT count(*) AS n, sum(value) AS t FROM {TABLE} GROUP BY carto.quadbin_frompoint(geom, 6)) c""").split("|")
    attrs = {a["attribute"]: a for a in tj["tilestats"]["layers"][0]["attributes"]}
    assert set(attrs) == {"n", "total"} and tj["tilestats"]["layers"][0]["attributeCount"] == 2
    assert [attrs["n"][k] for k in ("min", "max", "sum")] + [attrs["total"][k] for k in ("min", "max", "sum")] == [float(v) for v in want]
    assert attrs["n"]["type"] == "Number" and attrs["n"]["min"] < attrs["n"]["max"], "a domain, not one colour"
    # z0: every point, in resolution-4 cells.
    got = cells(maps, tj, 0, 0, 0)
    assert got == expected(stack, 4, 0, 0, 0)
    assert sum(n for n, _ in got.values()) == N + 2
    # z3 over Iberia/France, and the tile on whose top edge a point lies: it is counted once, in its own cell.
    for x, y in [(3, 2), (4, 2), (4, 3)]:
        assert cells(maps, tj, 3, x, y) == expected(stack, 7, 3, x, y)
    assert sum(sum(n for n, _ in cells(maps, tj, 3, x, y).values()) for x in range(8) for y in range(8)) == N + 2


def test_default_level_filters_and_reference_resolution(stack, maps):
    tj = maps.tilejson(maps.source("table", {"name": TABLE, **AGG}))  # the client's default level: 6
    assert cells(maps, tj, 2, 2, 1) == expected(stack, 8, 2, 2, 1)
    filtered = maps.tilejson(maps.source("table", {"name": TABLE, **AGG, "filters": '{"kind": {"in": {"values": ["a"]}}}'}))
    assert cells(maps, filtered, 2, 2, 1) == expected(stack, 8, 2, 2, 1, "kind = 'a'")
    # spatialIndexReferenceResolution bounds the cells' resolution.
    capped = maps.tilejson(maps.source("table", {"name": TABLE, **AGG, "spatialIndexReferenceResolution": "5"}))
    assert cells(maps, capped, 2, 2, 1) == expected(stack, 5, 2, 2, 1)
    assert cells(maps, capped, 6, 33, 22) == {}, "tiles finer than the reference resolution are empty"


def test_query_source_in_another_srid(stack, maps):
    q = f"SELECT id, value, ST_Transform(geom, 3857) AS geom FROM {TABLE} WHERE id % 2 = 0"
    tj = maps.tilejson(maps.source("query", {"q": q, **AGG, "aggregationResLevel": "5"}))
    assert cells(maps, tj, 1, 1, 0) == expected(stack, 6, 1, 1, 0, "id % 2 = 0")


def test_per_tile_cell_budget(stack, maps):
    # aggregationResLevel 16 would be 4^16 cells a tile: the resolution is lowered to the feature budget
    # (20000 features: 4^7 = 16384 cells at most).
    tj = maps.tilejson(maps.source("table", {"name": TABLE, **AGG, "aggregationResLevel": "16"}))
    got = cells(maps, tj, 3, 4, 2)
    assert got == expected(stack, 10, 3, 4, 2)


@pytest.mark.parametrize("params,fragment", [
    ({"spatialDataType": "hexagons"}, "spatialDataType"),
    ({"spatialDataType": "s2"}, "spatialDataType"),
    ({"spatialDataType": "trajectory"}, "trajectoryIdColumn"),  # a trajectory source without its columns
    ({"aggregationResLevel": "17"}, "aggregationResLevel"),
    ({"aggregationResLevel": "six"}, "aggregationResLevel"),
    ({"spatialIndexReferenceResolution": "27"}, "spatialIndexReferenceResolution"),
    ({"spatialIndexReferenceResolution": "-1"}, "spatialIndexReferenceResolution"),
])
def test_bad_aggregation_parameters(maps, params, fragment):
    err = assert_error(maps.handshake("table", {"name": TABLE, **AGG, **params}, maps.star), 400)
    assert fragment in err["error"]


def test_lines_are_refused(maps):
    # (H3 aggregation, and its 400 without the tessera_h3 extension, are in test_maps_h3.py.)
    err = assert_error(maps.handshake("table", {"name": "public.e2e_agg_lines", **AGG}, maps.star), 400, "invalid_parameter")
    assert "points" in err["error"]


def test_malformed_cell_ids(maps):
    tj = maps.tilejson(maps.source("table", {"name": TABLE, **AGG}))
    template = maps.local(tj["tiles"][0])
    for bad in ["zz", "480fffffffffffff0", "0000000000000000", "4841bffffffffff0"]:
        assert_error(maps.api.get(template.replace("{i}", bad), token=maps.star), 400, "invalid_tile")


# ---------------------------------------------------------------------------------------------
# widgets on a quadbin source: the viewport polygon (each spatialFiltersMode) and selected cells

CELLS = "public.e2e_agg_cells"
# The viewport the client sends on every pan: a polygon over France.
VIEWPORT = {"type": "Polygon", "coordinates": [[[-2.3, 43.1], [7.9, 43.1], [7.9, 49.6], [-2.3, 49.6], [-2.3, 43.1]]]}
ENVELOPE = "ST_MakeEnvelope(-2.3, 43.1, 7.9, 49.6, 4326)"
MODE_SQL = {
    "intersects": f"ST_Intersects(carto.quadbin_boundary(quadbin), {ENVELOPE})",
    "center": f"ST_Intersects(carto.quadbin_center(quadbin), {ENVELOPE})",
    "contains": f"ST_Contains({ENVELOPE}, carto.quadbin_boundary(quadbin))",
}


@pytest.fixture(scope="module")
def widgets(stack, api, maps):
    return Models(stack, api), cli_token(stack, "*")


def widget(widgets, model, params, spatial, **extra):
    m, token = widgets
    return m.ok(model, token, method="POST", source=CELLS, params=params, spatialDataType="quadbin",
                spatialDataColumn="quadbin", spatialFilters={"quadbin": spatial}, **extra)


def plain(stack, select: str, where: str) -> list[str]:
    return h.warehouse(stack, f"SELECT {select} FROM {CELLS} WHERE {where}").split("|")


@pytest.mark.parametrize("mode", ["intersects", "center", "contains"])
def test_quadbin_widgets_with_the_viewport(stack, widgets, mode):
    where = MODE_SQL[mode]
    n, total, lo, hi = plain(stack, "count(*), sum(value), min(value), max(value)", where)
    assert int(n) > 10, "the viewport must hold cells"
    extra = {} if mode == "intersects" else {"spatialFiltersMode": mode}  # intersects is the client's default
    assert widget(widgets, "formula", {"operation": "count"}, VIEWPORT, **extra) == {"rows": [{"value": int(n)}]}
    assert widget(widgets, "formula", {"column": "value", "operation": "sum"}, VIEWPORT, **extra) == {"rows": [{"value": int(total)}]}
    assert widget(widgets, "range", {"column": "value"}, VIEWPORT, **extra) == {"rows": [{"min": int(lo), "max": int(hi)}]}
    doc = widget(widgets, "category", {"column": "n", "operation": "count"}, VIEWPORT, **extra)
    want = h.warehouse(stack, f"SELECT n, count(*) FROM {CELLS} WHERE {where} GROUP BY n").splitlines()
    assert {(r["name"], r["value"]) for r in doc["rows"]} == {(int(a), int(b)) for a, b in (x.split("|") for x in want)}
    doc = widget(widgets, "histogram", {"column": "value", "operation": "count", "ticks": [10, 20]}, VIEWPORT, **extra)
    assert sum(r["value"] for r in doc["rows"]) == int(n)
    doc = widget(widgets, "table", {"column": ["value"], "sortBy": "value", "limit": 1}, VIEWPORT, **extra)
    assert doc["metadata"]["total"] == int(n)
    doc = widget(widgets, "aggregations", {"aggregations": [{"column": "value", "operation": "sum", "alias": "t"}]}, VIEWPORT, **extra)
    assert doc == {"rows": [{"t": int(total)}]}
    doc = widget(widgets, "scatterplot", {"xAxisColumn": "value", "yAxisColumn": "n", "limit": 100000}, VIEWPORT, **extra)
    assert len(doc["rows"]) == int(n)


def test_quadbin_widgets_with_selected_cells(stack, widgets):
    # Two cells as deck.gl prints them (hex): one of the data's resolution and a coarser one (its children count).
    fine, coarse = h.warehouse(stack, f"""
        SELECT lpad(to_hex(min(quadbin)), 16, '0'), lpad(to_hex(carto.quadbin_toparent(max(quadbin), 6)), 16, '0')
        FROM {CELLS}""").split("|")
    spatial = {"type": "quadbin", "indexes": [fine, coarse]}
    n, total = plain(stack, "count(*), sum(value)",
                     f"quadbin = x'{fine}'::bigint OR carto.quadbin_toparent(quadbin, 6) = x'{coarse}'::bigint")
    assert int(n) >= 2
    assert widget(widgets, "formula", {"operation": "count"}, spatial) == {"rows": [{"value": int(n)}]}
    assert widget(widgets, "formula", {"column": "value", "operation": "sum"}, spatial) == {"rows": [{"value": int(total)}]}
    # The decimal form of the same cell selects the same rows.
    decimal = str(int(fine, 16))
    assert widget(widgets, "formula", {"operation": "count"}, {"type": "quadbin", "indexes": [decimal]}) == {"rows": [{"value": 1}]}


@pytest.mark.parametrize("spatial,extra,code", [
    ({"type": "quadbin", "indexes": ["4841bffffffffff0"]}, {}, "invalid_spatial_filter"),
    ({"type": "quadbin", "indexes": "4841bfffffffffff"}, {}, "invalid_spatial_filter"),
    ({"type": "quadbin", "indexes": [1, 2]}, {}, "invalid_spatial_filter"),
    ({"type": "h3", "indexes": ["8a2a1072b59ffff"]}, {}, "invalid_spatial_filter"),
    (VIEWPORT, {"spatialFiltersMode": "touches"}, "invalid_spatial_filter"),
])
def test_bad_spatial_filters(widgets, spatial, extra, code):
    m, token = widgets
    fields = {"spatialDataType": "quadbin", "spatialDataColumn": "quadbin", "spatialFilters": {"quadbin": spatial}, **extra}
    r = m.call("formula", token, method="POST", source=CELLS, params={"operation": "count"}, **fields)
    err = assert_error(r, 400, code)
    assert "spatialFilters" in err["error"] or "H3" in err["error"] or "spatialFiltersMode" in err["error"]


# ---------------------------------------------------------------------------------------------
# vector sources: featureBbox (the client's prepareLabels) and aggregationExp (grouped by geometry)

SHAPES = "public.e2e_agg_shapes"


@pytest.fixture(scope="module")
def shapes(stack, maps):
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS {SHAPES};
        CREATE TABLE {SHAPES} (id int, value int, geom geometry(Geometry, 4326));
        INSERT INTO {SHAPES} VALUES
          (1, 10, ST_GeomFromText('POLYGON((-20 10, 30 10, 30 50, -20 50, -20 10))', 4326)),
          (2, 20, ST_GeomFromText('MULTIPOLYGON(((1 1, 2 1, 2 2.5, 1 1)))', 4326)),
          (3, 30, ST_GeomFromText('POINT(5 5)', 4326)),
          (4, 40, ST_GeomFromText('POINT(5 5)', 4326)),
          (5, 50, ST_GeomFromText('POINT(6 6)', 4326));
    """)
    return SHAPES


def test_feature_bbox_on_polygons(stack, maps, shapes):
    tj = maps.tilejson(maps.source("table", {"name": shapes, "featureBbox": "true"}))
    want = dict(line.split("|") for line in h.warehouse(stack, f"""
        SELECT id, concat_ws(',', ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)) FROM {shapes}
        WHERE GeometryType(geom) LIKE '%POLYGON'""").splitlines())
    # z2 tile 2/1 holds only part of the big polygon: the box is still the whole polygon's.
    for z, x, y in [(0, 0, 0), (2, 2, 1)]:
        features = maps.features(tj, z, x, y)
        got = {str(int(f.properties["id"])): f.properties.get("_carto_bbox") for f in features}
        assert {k: v for k, v in got.items() if v is not None} == {k: v for k, v in want.items() if k in got}
        assert all(got[i] is None for i in got if i not in want), "points carry no box"
    assert [float(v) for v in want["1"].split(",")] == [-20, 10, 30, 50]
    # Without the parameter there is none.
    plain_tj = maps.tilejson(maps.source("table", {"name": shapes}))
    assert all("_carto_bbox" not in f.properties for f in maps.features(plain_tj, 0, 0, 0))


def test_aggregation_exp_groups_vector_features_by_geometry(stack, maps, shapes):
    body = maps.source("table", {"name": shapes, "aggregationExp": "count(*) AS n, sum(value) AS total"})
    assert {c["name"] for c in body["schema"]} == {"geom", "n", "total"}
    tj = maps.tilejson(body)
    want = sorted(tuple(int(v) for v in line.split("|")) for line in h.warehouse(stack, f"""
        SELECT count(*), sum(value) FROM {shapes} GROUP BY geom""").splitlines())
    got = sorted((int(f.properties["n"]), int(f.properties["total"])) for f in maps.features(tj, 0, 0, 0))
    assert got == want and (2, 70) in got, "the two features at POINT(5 5) are one"
    # API access tokens may only send simple aggregates there.
    scoped = _cli_token(stack, shapes)
    assert_ok(maps.handshake("table", {"name": shapes, "aggregationExp": "count(*) AS n"}, scoped))
    err = assert_error(maps.handshake("table", {"name": shapes, "aggregationExp": "(SELECT 1) AS x"}, scoped), 403)
    assert "aggregationExp" in err["error"]


def test_slow_aggregation_answers_429(limits_stack):
    """A statement-timeout-bound aggregation (1 s on this stack): the TileJSON's attributes and the tile both
    stop at the timeout with 429, not a hang or a 500."""
    h.warehouse(limits_stack, """
        CREATE TABLE IF NOT EXISTS e2e_agg_slow AS
          SELECT g AS id, ST_SetSRID(ST_MakePoint(g % 50, g % 40), 4326) AS geom FROM generate_series(1, 400) g""")
    token = limits_stack.tessera("tokens", "create", "--email", limits_stack.admin_email, "--connection", "carto_dw",
                                 "--source", "*", "--apis", "maps").strip().splitlines()[-1]
    api = h.Api(limits_stack)
    r = api.get("/api/v3/maps/carto_dw/table", token=token, params={
        "name": "public.e2e_agg_slow", "spatialDataType": "quadbin", "spatialDataColumn": "geom",
        "aggregationExp": "count(*) AS n, max(pg_sleep(0.01)::text) AS slow"})
    body = assert_ok(r)
    tilejson = body["tilejson"]["url"][0][len(limits_stack.base_url):]
    assert_error(api.get(tilejson, token=token), 429, "statement_timeout")
    source = tilejson.split("source=")[1].split("&")[0]
    tile = f"/api/v3/maps/carto_dw/table/480fffffffffffff?source={source}&formatTiles=json&spatialIndex=quadbin"
    assert_error(api.get(tile, token=token), 429, "statement_timeout")
