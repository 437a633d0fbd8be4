"""Maps API v3 end to end (carto-v3-api.md §1, §2.1–2.4, §2.9, §3, §14(a); reliability.md A1, B7–B11):
the handshake (GET and POST forms), TileJSON, Mapbox Vector Tiles decoded with an independent decoder
(Tests/e2e/mvt.py, cross-checked against GDAL's MVT driver) and compared with the source rows, the
`cache` data version, hostile tile coordinates, per-tile budgets (on a second stack), the Stats API and
the grant matrix of API Access Tokens.

Fixture tables (own, deterministic, in the carto_dw warehouse):
  public.e2e_maps_points   8 points, SRID 4326, number/text/bool/timestamptz columns
  public.e2e_maps_polys    3 rectangles, SRID 3857
  public.e2e_maps_lines    4 line strings, SRID 25830 (ETRS89 / UTM 30N)
  public.e2e_maps_cache    a table whose data changes during the tests (cache buster)
  e2e_maps_s.hidden        a point table in another schema (schema grants)
"""

from __future__ import annotations

import json
import re
import math
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from datetime import datetime
from pathlib import Path

import pytest

import helpers as h
import mvt
from helpers import assert_error, assert_ok

CONN = "carto_dw"
MAPS = f"/api/v3/maps/{CONN}"
STATS = f"/api/v3/stats/{CONN}"
POINTS = "public.e2e_maps_points"
POLYS = "public.e2e_maps_polys"
LINES = "public.e2e_maps_lines"
CACHE_T = "public.e2e_maps_cache"
HIDDEN = "e2e_maps_s.hidden"
CLIENT_PARAMS = {"v": "3.4", "client": "deck-gl-carto", "deckglVersion": "9.1.8", "tag-mapId": "e2e-map"}
TILE_TYPE = "application/vnd.mapbox-vector-tile"

# (cartodb_id, name, population, score, active, kind, created, lon, lat)
POINT_ROWS = [
    (1, "Madrid", 3300000, 1.5, True, "capital", "2024-01-01T00:00:00+00:00", -3.70, 40.30),
    (2, "Paris", 2100000, 2.5, True, "capital", "2024-02-01T12:00:00+00:00", 2.35, 48.86),
    (3, "Lisbon", 500000, 0.5, False, "capital", "2024-03-01T00:00:00+00:00", -9.14, 38.72),
    (4, "Quito", None, 3.25, False, "capital", "2023-12-31T23:00:00+00:00", -78.5, -0.22),
    (5, "Tokyo", 14000000, 4.0, True, "capital", "2024-05-05T05:05:05+00:00", 139.69, 35.69),
    (6, "Sydney", 5300000, 2.0, None, "city", "2024-06-01T00:00:00+00:00", 151.21, -33.87),
    (7, "Nuuk", 18000, 0.25, False, "capital", "2024-07-01T00:00:00+00:00", -51.72, 64.18),
    (8, "O'Brien \"q\" ñ; DROP", 42, 1.0, True, None, "2024-08-01T00:00:00+00:00", -70.5, 40.0),
]
POINT_COLUMNS = ("cartodb_id", "name", "population", "score", "active", "kind", "created")
# (id, label, rank, west, south, east, north) in WGS84, stored as SRID 3857 rectangles
POLY_ROWS = [
    (1, "Iberia box", 10, -8.0, 37.0, -1.0, 40.5),
    (2, "Alps box", 20, 6.0, 45.0, 10.0, 47.0),
    (3, "Andes box", 30, -72.0, -20.0, -68.0, -14.0),
]
# (id, road, lanes, [(lon, lat), ...]) in WGS84, stored as SRID 25830
LINE_ROWS = [
    (1, "A-6", 6, [(-3.80, 40.30), (-3.60, 40.50)]),
    (2, "M-30", 4, [(-3.75, 40.38), (-3.65, 40.45), (-3.70, 40.48)]),
    (3, "Sevilla", 2, [(-6.00, 37.35), (-5.90, 37.40)]),
    (4, "Long", 1, [(-9.00, 36.00), (3.00, 43.00)]),
]
QUERY_GRANT = "SELECT cartodb_id, name, population, geom FROM public.e2e_maps_points WHERE population > 1000000"


def _sql_str(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def _fixture_sql() -> str:
    points = ",\n".join(
        f"({i}, {_sql_str(n)}, {_sql_str(p)}, {s!r}, {_sql_str(a)}, {_sql_str(k)}, {_sql_str(c)}::timestamptz, "
        f"ST_SetSRID(ST_MakePoint({lon!r}, {lat!r}), 4326))"
        for i, n, p, s, a, k, c, lon, lat in POINT_ROWS)
    polys = ",\n".join(
        f"({i}, {_sql_str(label)}, {rank}, ST_Transform(ST_MakeEnvelope({w!r}, {s!r}, {e!r}, {n!r}, 4326), 3857))"
        for i, label, rank, w, s, e, n in POLY_ROWS)
    lines = ",\n".join(
        f"({i}, {_sql_str(road)}, {lanes}, ST_Transform(ST_SetSRID(ST_MakeLine(ARRAY["
        + ", ".join(f"ST_MakePoint({x!r}, {y!r})" for x, y in pts) + "]), 4326), 25830))"
        for i, road, lanes, pts in LINE_ROWS)
    return f"""
DROP SCHEMA IF EXISTS e2e_maps_s CASCADE;
DROP TABLE IF EXISTS {POINTS}, {POLYS}, {LINES}, {CACHE_T};
CREATE TABLE {POINTS} (
    cartodb_id integer PRIMARY KEY, name text, population integer, score double precision,
    active boolean, kind text, created timestamptz, geom geometry(Point, 4326));
INSERT INTO {POINTS} VALUES {points};
CREATE INDEX ON {POINTS} USING gist (geom);
CREATE TABLE {POLYS} (id integer PRIMARY KEY, label text, rank integer, geom geometry(Polygon, 3857));
INSERT INTO {POLYS} VALUES {polys};
CREATE INDEX ON {POLYS} USING gist (geom);
CREATE TABLE {LINES} (id integer PRIMARY KEY, road text, lanes integer, geom geometry(LineString, 25830));
INSERT INTO {LINES} VALUES {lines};
CREATE INDEX ON {LINES} USING gist (geom);
CREATE TABLE {CACHE_T} (id integer, geom geometry(Point, 4326));
INSERT INTO {CACHE_T} VALUES (1, ST_SetSRID(ST_MakePoint(10, 10), 4326));
CREATE INDEX ON {CACHE_T} USING gist (geom);
CREATE SCHEMA e2e_maps_s;
CREATE TABLE {HIDDEN} (id integer, secret text, geom geometry(Point, 4326));
INSERT INTO {HIDDEN} VALUES (1, 'hidden-value', ST_SetSRID(ST_MakePoint(20, 20), 4326));
CREATE INDEX ON {HIDDEN} USING gist (geom);
ANALYZE {POINTS}; ANALYZE {POLYS}; ANALYZE {LINES};
"""


# --------------------------------------------------------------------------------------------
# fixtures


def _cli_token(stack, source: str, apis: str = "maps", email: str | None = None) -> str:
    out = h.tessera(stack, "tokens", "create", "--email", email or stack.admin_email, "--connection", CONN,
                    "--source", source, "--apis", apis).stdout
    return out.strip().splitlines()[-1].strip()


class Maps:
    """The session stack seen through the Maps API, with one API token per scenario."""

    def __init__(self, stack):
        self.stack = stack
        self.api = h.Api(stack)
        h.warehouse(stack, _fixture_sql())
        self.star = _cli_token(stack, "*")
        self.tok_points = _cli_token(stack, POINTS)
        self.tok_points_short = _cli_token(stack, "e2e_maps_points")
        self.tok_schema = _cli_token(stack, "e2e_maps_s.*")
        self.tok_query = _cli_token(stack, QUERY_GRANT)
        self.tok_sql_only = _cli_token(stack, "*", apis="sql")

    # ---- requests, the way CARTO's clients make them ----

    def handshake(self, kind: str, params: dict, token: str | None = None, method: str = "GET", conn: str = CONN):
        path = f"/api/v3/maps/{conn}/{kind}"
        if method == "GET":
            return self.api.get(path, params=params, token=token)
        return self.api.post(path, json_body=params, token=token)

    def source(self, kind: str, params: dict, token: str | None = None, method: str = "GET") -> dict:
        body = assert_ok(self.handshake(kind, {**CLIENT_PARAMS, **params}, token or self.star, method))
        return body

    def local(self, url: str) -> str:
        """An absolute URL the server returned, as a path on this stack (and it must be on this stack)."""
        assert url.startswith(self.stack.base_url + "/api/v3/"), url
        return url[len(self.stack.base_url):]

    def tilejson_resp(self, handshake_body: dict, token: str | None = None, extra: dict | None = None):
        url = handshake_body["tilejson"]["url"][0]
        return self.api.get(self.local(url), params={**CLIENT_PARAMS, **(extra or {})}, token=token)

    def tilejson(self, handshake_body: dict, token: str | None = None) -> dict:
        return assert_ok(self.tilejson_resp(handshake_body, token or self.star))

    def tile_path(self, tj: dict, z, x, y) -> str:
        return self.local(tj["tiles"][0]).replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))

    def tile(self, tj: dict, z, x, y, token: str | None = None, headers: dict | None = None):
        return self.api.get(self.tile_path(tj, z, x, y), token=token if token is not None else self.star,
                            headers=headers)

    def features(self, tj: dict, z: int, x: int, y: int, token: str | None = None) -> list[mvt.Feature]:
        """The decoded features of a tile ([] for 204), checking the MVT framing on the way."""
        r = self.tile(tj, z, x, y, token)
        if r.status == 204:
            assert r.body == b""
            assert r.header("Access-Control-Allow-Origin") == "*"
            return []
        assert r.status == 200, r
        assert r.header("Content-Type") == TILE_TYPE
        assert r.header("Access-Control-Allow-Origin") == "*"
        layers = mvt.decode(r.body)
        assert list(layers) == ["default"], layers.keys()
        layer = layers["default"]
        assert layer.version == 2
        assert layer.extent == int(1024 * tj["tileResolution"])
        assert layer.features, "a 200 tile must not be empty (empty tiles are 204)"
        # Every feature carries _carto_feature_id (what the pick model matches); the source-row checks
        # below compare the other properties, test_feature_ids_match_the_pick_model this one.
        for f in layer.features:
            fid = f.properties.pop("_carto_feature_id")
            assert re.fullmatch(r"[0-9a-f]{32}", fid), fid
            f.feature_id = fid
        return layer.features


@pytest.fixture(scope="module")
def maps(stack):
    return Maps(stack)


@pytest.fixture(scope="module")
def points_tj(maps):
    return maps.tilejson(maps.source("table", {"name": POINTS}))


@pytest.fixture(scope="module")
def polys_tj(maps):
    return maps.tilejson(maps.source("table", {"name": POLYS}))


@pytest.fixture(scope="module")
def lines_tj(maps):
    return maps.tilejson(maps.source("table", {"name": LINES}))


def source_id(url: str) -> str:
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert len(q["source"]) == 1
    return q["source"][0]


def cache_of(url: str) -> int:
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    value = q["cache"][0]
    assert value.isdigit(), value
    return int(value)


# --------------------------------------------------------------------------------------------
# expectations computed from the source rows


def expected_points(z: int, x: int, y: int, extent: int, rows=POINT_ROWS, keep=lambda r: True) -> set[int]:
    """Ids of the rows a tile must hold: inside the tile plus its buffer (max(8, extent/64) px)."""
    buffer = max(8, extent // 64)
    out = set()
    for row in rows:
        if not keep(row):
            continue
        lon, lat = row[-2], row[-1]
        px, py = mvt.tile_pixel(lon, lat, z, x, y, extent)
        for v in (px, py):  # the fixture data must not sit on a tile/buffer edge
            assert min(abs(v + buffer), abs(v - extent - buffer)) > 1, (row, z, x, y)
        if -buffer <= px <= extent + buffer and -buffer <= py <= extent + buffer:
            out.add(row[0])
    return out


def point_properties(row, columns=POINT_COLUMNS) -> dict:
    full = dict(zip(POINT_COLUMNS, row[:7]))
    return {k: v for k, v in full.items() if k in columns and v is not None}


def parse_ts(text: str) -> datetime:
    t = text.replace(" ", "T")
    if len(t) >= 3 and t[-3] in "+-" and t[-2:].isdigit():
        t += ":00"
    return datetime.fromisoformat(t)


def assert_same_properties(got: dict, want: dict):
    assert set(got) == set(want), (got, want)
    for k, v in want.items():
        if k == "created":
            assert parse_ts(got[k]) == datetime.fromisoformat(v), (k, got[k], v)
        elif isinstance(v, bool) or isinstance(v, str):
            assert got[k] == v and type(got[k]) is type(v), (k, got[k], v)
        else:
            assert isinstance(got[k], (int, float)) and not isinstance(got[k], bool), (k, got[k])
            assert got[k] == pytest.approx(v), (k, got[k], v)


def pixel_tolerance(z: int, extent: int) -> float:
    """Degrees of longitude per tile pixel, times two (snapping to the grid + our own rounding)."""
    return 2 * 360.0 / (1 << z) / extent


def by_id(features, key="cartodb_id") -> dict:
    out = {}
    for f in features:
        fid = int(f.properties[key])
        assert fid not in out, f"feature {fid} twice in one tile"
        out[fid] = f
    return out


# ============================================================================================
# handshake (§2.1)


def test_handshake_get_table(maps, stack):
    body = maps.source("table", {"name": POINTS, "spatialDataColumn": "geom", "spatialDataType": "geo",
                                  "tileResolution": "0.5"})
    assert body["nrows"] == len(POINT_ROWS)
    schema = {c["name"]: c["type"] for c in body["schema"]}
    assert schema == {"cartodb_id": "number", "name": "string", "population": "number", "score": "number",
                      "active": "boolean", "kind": "string", "created": "timestamp", "geom": "geometry"}
    assert [c["name"] for c in body["schema"]] == [*POINT_COLUMNS, "geom"]
    urls = body["tilejson"]["url"]
    assert isinstance(urls, list) and len(urls) == 1
    url = urls[0]
    assert url.startswith(f"{stack.base_url}/api/v3/maps/{CONN}/table?"), url
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert q["format"] == ["tilejson"]
    assert cache_of(url) > 0
    assert source_id(url)


def test_handshake_post_body_equals_get(maps):
    params = {"name": POINTS, "spatialDataColumn": "geom", "spatialDataType": "geo", "tileResolution": "0.5"}
    got = maps.source("table", params)
    posted = maps.source("table", params, method="POST")
    assert source_id(posted["tilejson"]["url"][0]) == source_id(got["tilejson"]["url"][0])
    assert posted["schema"] == got["schema"] and posted["nrows"] == got["nrows"]
    # POST bodies carry numbers as JSON numbers too.
    posted = maps.source("table", {**params, "tileResolution": 0.5}, method="POST")
    assert source_id(posted["tilejson"]["url"][0]) == source_id(got["tilejson"]["url"][0])


def test_handshake_defaults_and_ignored_params(maps):
    plain = assert_ok(maps.handshake("table", {"name": POINTS}, maps.star))
    noisy = assert_ok(maps.handshake("table", {"name": POINTS, "v": "3.4", "client": "carto-for-react",
                                                "deckglVersion": "8.9.0", "tag-mapId": "m1", "tag-x": "y",
                                                "whatever": "1", "spatialDataColumn": "geom",
                                                "spatialDataType": "geo", "tileResolution": "0.5"}, maps.star))
    assert source_id(plain["tilejson"]["url"][0]) == source_id(noisy["tilejson"]["url"][0])


def test_filters_json_string_and_object_are_the_same_source(maps):
    filters = {"population": {"between": {"values": [[1000000, 6000000]]}}, "kind": {"in": {"values": ["capital"]}}}
    got = maps.source("table", {"name": POINTS, "filters": json.dumps(filters)})
    posted = maps.source("table", {"name": POINTS, "filters": filters}, method="POST")
    posted_str = maps.source("table", {"name": POINTS, "filters": json.dumps(filters)}, method="POST")
    ids = {source_id(b["tilejson"]["url"][0]) for b in (got, posted, posted_str)}
    assert len(ids) == 1, ids
    unfiltered = maps.source("table", {"name": POINTS})
    assert source_id(unfiltered["tilejson"]["url"][0]) not in ids
    tj = maps.tilejson(got)
    assert tj["tilestats"]["layers"][0]["count"] == 2  # Madrid, Paris (Sydney is a city, Quito has no population)


def test_columns_comma_list_and_json_array_are_the_same_source(maps):
    a = maps.source("table", {"name": POINTS, "columns": "name, population"})
    b = maps.source("table", {"name": POINTS, "columns": json.dumps(["name", "population"])})
    c = maps.source("table", {"name": POINTS, "columns": ["name", "population"]}, method="POST")
    assert len({source_id(x["tilejson"]["url"][0]) for x in (a, b, c)}) == 1


def test_query_source_get_and_post(maps):
    q = "SELECT cartodb_id, name, population, geom FROM public.e2e_maps_points WHERE population > $1"
    got = maps.source("query", {"q": q, "queryParameters": json.dumps([1000000])})
    posted = maps.source("query", {"q": q, "queryParameters": [1000000]}, method="POST")
    assert source_id(got["tilejson"]["url"][0]) == source_id(posted["tilejson"]["url"][0])
    assert got["tilejson"]["url"][0].startswith(maps.stack.base_url + f"/api/v3/maps/{CONN}/query?")
    assert [c["name"] for c in got["schema"]] == ["cartodb_id", "name", "population", "geom"]
    assert isinstance(got["nrows"], int) and got["nrows"] >= 0
    tj = maps.tilejson(got)
    assert tj["tilestats"]["layers"][0]["count"] == 4  # Madrid, Paris, Tokyo, Sydney
    names = {f.properties["name"] for f in maps.features(tj, 0, 0, 0)}
    assert names == {"Madrid", "Paris", "Tokyo", "Sydney"}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_handshake_errors(maps, method):
    def hs(kind, params):
        return maps.handshake(kind, params, maps.star, method)

    assert_error(hs("table", {"name": POINTS, "geo_column": "geom"}), 400, "invalid_parameter")
    assert_error(hs("table", {}), 400, "missing_parameter")
    assert_error(hs("table", {"name": ""}), 400, "missing_parameter")
    assert_error(hs("query", {}), 400, "missing_parameter")
    assert_error(hs("query", {"q": "   "}), 400, "missing_parameter")
    r = hs("table", {"name": "public.e2e_maps_no_such_table"})
    assert r.status in (400, 404), r
    assert_error(r, r.status)
    for bad in ({"tileResolution": "3"}, {"tileResolution": "abc"}, {"spatialDataType": "h3x"},
                {"filtersLogicalOperator": "xor"}):
        assert_error(hs("table", {"name": POINTS, **bad}), 400, "invalid_parameter")
    # The spatial column must exist and be a geometry.
    doc = assert_error(hs("table", {"name": POINTS, "spatialDataColumn": "the_geom"}), 400, "column_not_found")
    assert doc["column_name"] == "the_geom" and doc["error"] == "Column not found"
    assert_error(hs("table", {"name": POINTS, "spatialDataColumn": "name"}), 400, "invalid_parameter")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_columns_are_400_with_column_name(maps, method):
    cases = [
        {"columns": "name,nope"},
        {"columns": ["name", "nope"] if method == "POST" else json.dumps(["name", "nope"])},
        {"filters": {"nope": {"in": {"values": [1]}}}},
        {"filters": {"nope\" OR 1=1 --": {"in": {"values": [1]}}}},
        {"filters": {"pg_sleep(1)": {"in": {"values": [1]}}}},
    ]
    for extra in cases:
        params = {"name": POINTS, **extra}
        if method == "GET" and isinstance(params.get("filters"), dict):
            params["filters"] = json.dumps(params["filters"])
        doc = assert_error(maps.handshake("table", params, maps.star, method), 400, "column_not_found")
        want = "nope" if "columns" in extra else next(iter(extra["filters"]))
        assert doc["column_name"] == want and doc["error"] == "Column not found", doc


def test_bad_filters(maps):
    def hs(filters, method="GET"):
        p = {"name": POINTS, "filters": filters}
        return maps.handshake("table", p, maps.star, method)

    assert_error(hs("{not json"), 400, "invalid_parameter")
    assert_error(hs(json.dumps([1, 2])), 400, "invalid_filter")
    assert_error(hs(json.dumps({"name": {"like": {"values": ["x"]}}})), 400, "invalid_filter")
    assert_error(hs(json.dumps({"name": {"in": {"values": [{"$gt": 1}]}}})), 400, "invalid_filter")
    assert_error(hs(json.dumps({"population": {"between": {"values": [[1]]}}})), 400, "invalid_filter")
    assert_error(hs(json.dumps({"population": {"in": {"values": ["x' OR 1=1 --"]}}})), 400, "invalid_filter")
    # B10: deep nesting is refused at the parser, GET and POST alike.
    deep = "[" * 2000 + "]" * 2000
    assert_error(hs(deep), 400)
    r = maps.api.post(f"{MAPS}/table", data='{"name": "%s", "filters": %s}' % (POINTS, deep),
                      headers={"Content-Type": "application/json"}, token=maps.star)
    assert_error(r, 400)


def test_filter_values_are_bound_not_spliced(maps):
    """B8: quotes and SQL in filter values only ever match as data."""
    before = h.warehouse(maps.stack, f"SELECT count(*) FROM {POINTS}")
    for value in ("x' OR 1=1 --", "'); DROP TABLE public.e2e_maps_points; --", "\\'", "\u2019 OR \u20191\u2019=\u20191",
                  "O'Brien \"q\" ñ; DROP"):
        filters = {"name": {"in": {"values": [value]}}}
        tj = maps.tilejson(maps.source("table", {"name": POINTS, "filters": json.dumps(filters)}))
        want = 1 if value == POINT_ROWS[7][1] else 0
        assert tj["tilestats"]["layers"][0]["count"] == want, value
        names = [f.properties["name"] for f in maps.features(tj, 0, 0, 0)]
        assert names == ([value] if want else []), value
    assert h.warehouse(maps.stack, f"SELECT count(*) FROM {POINTS}") == before


def test_unknown_connection_and_type(maps):
    # A token without a grant on the connection: 403 (no connection of that name for a user: 404).
    assert_error(maps.handshake("table", {"name": POINTS}, maps.star, conn="no_such_conn"), 403, "source_not_granted")
    assert_error(maps.api.get(f"{MAPS}/vectorz", params={"name": POINTS}, token=maps.star), 404)
    # raster is a source type now (test_maps_raster.py); a vector table is not a raster source.
    assert_error(maps.api.get(f"{MAPS}/raster", params={"name": POINTS}, token=maps.star), 400, "invalid_source")


# ============================================================================================
# TileJSON (§2.2)


def test_tilejson_fields(maps, stack, points_tj):
    hs = maps.source("table", {"name": POINTS})
    r = maps.tilejson_resp(hs, maps.star)
    tj = assert_ok(r)
    assert r.header("Content-Type").startswith("application/json")
    assert tj == points_tj
    assert tj["tilejson"] == "3.0.0"
    assert isinstance(tj["tiles"], list) and len(tj["tiles"]) == 1
    tpl = tj["tiles"][0]
    assert tpl.startswith(f"{stack.base_url}/api/v3/maps/{CONN}/table/{{z}}/{{x}}/{{y}}?"), tpl
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(tpl).query)
    assert q["formatTiles"] == ["mvt"]
    assert q["source"] == [source_id(hs["tilejson"]["url"][0])]
    assert cache_of(tpl) == cache_of(hs["tilejson"]["url"][0])
    assert tj["minzoom"] == 0 and tj["maxzoom"] >= 14 and tj["maxzoom"] <= 24
    assert all(isinstance(tj[k], int) for k in ("minzoom", "maxzoom"))
    lons = [r[7] for r in POINT_ROWS]
    lats = [r[8] for r in POINT_ROWS]
    assert tj["bounds"] == pytest.approx([min(lons), min(lats), max(lons), max(lats)], abs=1e-4)
    w, s, e, n = tj["bounds"]
    cx, cy, cz = tj["center"]
    assert w <= cx <= e and s <= cy <= n and isinstance(cz, (int, float)) and 0 <= cz <= tj["maxzoom"]
    (vl,) = tj["vector_layers"]
    assert vl["id"] == "default"
    assert set(vl["fields"]) == set(POINT_COLUMNS)
    assert vl["fields"]["population"] == "Number" and vl["fields"]["name"] == "String"
    stats = tj["tilestats"]
    assert stats["layerCount"] == 1
    (layer,) = stats["layers"]
    assert layer["layer"] == "default" and layer["count"] == len(POINT_ROWS) and layer["geometry"] == "Point"
    attrs = {a["attribute"]: a for a in layer["attributes"]}
    assert set(attrs) == set(POINT_COLUMNS)
    pops = [r[2] for r in POINT_ROWS if r[2] is not None]
    pop = attrs["population"]
    assert pop["type"] == "Number"
    assert (pop["min"], pop["max"], pop["sum"]) == (min(pops), max(pops), sum(pops))
    assert pop["avg"] == pytest.approx(sum(pops) / len(pops))
    assert attrs["score"]["min"] == 0.25 and attrs["score"]["max"] == 4.0
    assert attrs["name"]["type"] == "String" and attrs["kind"]["type"] == "String"
    assert attrs["active"]["type"] == "Boolean"
    assert attrs["created"]["type"] == "Timestamp"
    assert any("Authorization" in v for v in r.all("Vary")), r.all("Vary")


def test_tilejson_respects_columns_and_resolution(maps):
    tj = maps.tilejson(maps.source("table", {"name": POINTS, "columns": "name,population", "tileResolution": "1"}))
    assert set(tj["vector_layers"][0]["fields"]) == {"name", "population"}
    assert {a["attribute"] for a in tj["tilestats"]["layers"][0]["attributes"]} == {"name", "population"}
    assert tj["tileResolution"] == 1
    # Columns may name the spatial column too (it is not a property).
    tj = maps.tilejson(maps.source("table", {"name": POINTS, "columns": "geom,name"}))
    assert set(tj["vector_layers"][0]["fields"]) == {"name"}


def test_tilejson_of_3857_and_25830_tables(polys_tj, lines_tj):
    assert polys_tj["tilestats"]["layers"][0]["geometry"] == "Polygon"
    assert polys_tj["tilestats"]["layers"][0]["count"] == len(POLY_ROWS)
    want = [min(r[3] for r in POLY_ROWS), min(r[4] for r in POLY_ROWS),
            max(r[5] for r in POLY_ROWS), max(r[6] for r in POLY_ROWS)]
    assert polys_tj["bounds"] == pytest.approx(want, abs=1e-6)
    assert lines_tj["tilestats"]["layers"][0]["geometry"] == "LineString"
    assert lines_tj["tilestats"]["layers"][0]["count"] == len(LINE_ROWS)
    pts = [p for r in LINE_ROWS for p in r[3]]
    want = [min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts)]
    assert lines_tj["bounds"] == pytest.approx(want, abs=1e-6)
    lanes = {a["attribute"]: a for a in lines_tj["tilestats"]["layers"][0]["attributes"]}["lanes"]
    assert (lanes["min"], lanes["max"]) == (1, 6)


def test_tilejson_unknown_or_foreign_source(maps, points_tj):
    assert_error(maps.api.get(f"{MAPS}/table", params={"source": "AAAAAAAAAAAAAAAAAAAAAA", "format": "tilejson"},
                              token=maps.star), 404, "source_not_found")
    assert_error(maps.api.get(f"{MAPS}/table", params={"source": "../../etc/passwd", "format": "tilejson"},
                              token=maps.star), 404, "source_not_found")
    sid = source_id(points_tj["tiles"][0])
    # The id is bound to its connection.
    assert_error(maps.api.get("/api/v3/maps/other_conn/table", params={"source": sid, "format": "tilejson"},
                              token=maps.star), 404)


# ============================================================================================
# the cache buster (§1.6)


def test_cache_changes_when_the_data_changes(maps):
    def current() -> int:
        return cache_of(maps.source("table", {"name": CACHE_T})["tilejson"]["url"][0])

    # PostgreSQL publishes its per-table counters with a delay (~1 s): wait until the value settles.
    deadline = time.monotonic() + 15
    stable = current()
    while True:
        time.sleep(1.5)
        again = current()
        if again == stable:
            break
        assert time.monotonic() < deadline, "cache value never settled"
        stable = again
    h.warehouse(maps.stack, f"INSERT INTO {CACHE_T} VALUES (2, ST_SetSRID(ST_MakePoint(11, 11), 4326))")
    deadline = time.monotonic() + 15
    changed = current()
    while changed == stable:
        assert time.monotonic() < deadline, "cache value did not change within 15 s of an INSERT"
        time.sleep(0.5)
        changed = current()
    tj = maps.tilejson(maps.source("table", {"name": CACHE_T}))
    assert cache_of(tj["tiles"][0]) == changed
    assert tj["tilestats"]["layers"][0]["count"] == 2
    # A TRUNCATE replaces the table's file: the value changes at once.
    h.warehouse(maps.stack, f"TRUNCATE {CACHE_T}")
    assert current() != changed


# ============================================================================================
# tiles (§2.3, §2.4, §2.9)


@pytest.mark.parametrize("z", [0, 1, 2, 3])
def test_every_low_zoom_tile_holds_exactly_its_points(maps, points_tj, z):
    """All tiles of zooms 0-3, including the first and last columns (x = 0 and x = 2^z - 1), whose
    buffered envelope crosses the antimeridian."""
    extent = int(1024 * points_tj["tileResolution"])
    seen, wrong = set(), {}
    n = 1 << z
    for x in range(n):
        for y in range(n):
            got = set(by_id(maps.features(points_tj, z, x, y)))
            want = expected_points(z, x, y, extent)
            if got != want:
                wrong[(x, y)] = {"missing": sorted(want - got), "extra": sorted(got - want)}
            seen |= got
    assert not wrong, f"z{z} tiles with the wrong features: {wrong}"
    assert seen == {r[0] for r in POINT_ROWS}


def test_point_tile_content_and_positions(maps, points_tj):
    extent = int(1024 * points_tj["tileResolution"])
    rows = {r[0]: r for r in POINT_ROWS}
    for z in (0, 4, 9, 14):
        for fid in (1, 8):  # Madrid; the row with quotes and non-ASCII text
            lon, lat = rows[fid][7], rows[fid][8]
            x, y = mvt.tile_of(lon, lat, z)
            feats = by_id(maps.features(points_tj, z, x, y))
            assert set(feats) == expected_points(z, x, y, extent), (z, fid)
            for got_id, f in feats.items():
                row = rows[got_id]
                assert f.type == "POINT" and len(f.points) == 1
                assert_same_properties(f.properties, point_properties(row))
                glon, glat = mvt.to_lonlat(z, x, y, extent, *f.points[0])
                tol = pixel_tolerance(z, extent)
                assert abs(glon - row[7]) <= tol and abs(glat - row[8]) <= tol, (z, row, glon, glat)


def test_tile_matches_gdal_decoder(maps, points_tj):
    """Cross-check of mvt.py against GDAL's MVT driver on one tile."""
    if not shutil.which("ogr2ogr"):
        pytest.fail("ogr2ogr (gdal-bin) is required for the MVT cross-check")
    z, (x, y) = 3, mvt.tile_of(-3.70, 40.42, 3)
    r = maps.tile(points_tj, z, x, y)
    assert r.status == 200, r
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tile.mvt"
        path.write_bytes(r.body)
        out = subprocess.run(["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", str(path), "-t_srs", "EPSG:4326",
                              "-oo", f"X={x}", "-oo", f"Y={y}", "-oo", f"Z={z}"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
    gdal = {int(f["properties"]["cartodb_id"]): f for f in json.loads(out.stdout)["features"]}
    ours = by_id(maps.features(points_tj, z, x, y))
    assert set(gdal) == set(ours) and gdal
    extent = int(1024 * points_tj["tileResolution"])
    for fid, f in ours.items():
        g = gdal[fid]
        for k, v in f.properties.items():
            assert g["properties"][k] == (pytest.approx(v) if isinstance(v, float) else v), (k, g["properties"], v)
        lon, lat = mvt.to_lonlat(z, x, y, extent, *f.points[0])
        assert g["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-6)


def test_columns_limit_properties(maps):
    tj = maps.tilejson(maps.source("table", {"name": POINTS, "columns": "name,active"}))
    feats = maps.features(tj, 0, 0, 0)
    assert len(feats) == len(POINT_ROWS)
    for f in feats:
        row = next(r for r in POINT_ROWS if r[1] == f.properties["name"])
        assert_same_properties(f.properties, point_properties(row, ("name", "active")))


@pytest.mark.parametrize("filters,op,keep", [
    ({"population": {"between": {"values": [[1000000, 6000000]]}}}, None,
     lambda r: r[2] is not None and 1000000 <= r[2] <= 6000000),
    ({"population": {"closed_open": {"values": [[500000, 3300000]]}}}, None,
     lambda r: r[2] is not None and 500000 <= r[2] < 3300000),
    ({"name": {"in": {"values": ["Paris", "Nuuk", "Atlantis"]}}}, None, lambda r: r[1] in ("Paris", "Nuuk")),
    ({"active": {"in": {"values": [True]}}}, None, lambda r: r[4] is True),
    ({"kind": {"in": {"values": [None]}}}, None, lambda r: r[5] is None),
    ({"name": {"stringSearch": {"values": ["ri"]}}}, None, lambda r: "ri" in r[1].lower()),
    ({"name": {"stringSearch": {"values": ["M"], "params": {"mustStart": True, "caseSensitive": True}}}}, None,
     lambda r: r[1].startswith("M")),
    ({"created": {"time": {"values": [["2024-02-01T00:00:00Z", "2024-06-01T00:00:00Z"]]}}}, None,
     # inclusive upper bound (Sydney is at exactly 2024-06-01), as the client's local time filter
     lambda r: "2024-02-01" <= r[6][:10] <= "2024-06-01"),
    ({"kind": {"in": {"values": ["city"]}}, "score": {"between": {"values": [[0, 1]]}}}, "or",
     lambda r: r[5] == "city" or r[3] <= 1),
    ({"kind": {"in": {"values": ["capital"]}}, "score": {"between": {"values": [[0, 1]]}}}, "and",
     lambda r: r[5] == "capital" and r[3] <= 1),
])
def test_filters_remove_features(maps, filters, op, keep):
    params = {"name": POINTS, "filters": json.dumps(filters)}
    if op:
        params["filtersLogicalOperator"] = op
    tj = maps.tilejson(maps.source("table", params))
    want = {r[0] for r in POINT_ROWS if keep(r)}
    assert want, "the filter case must keep something"
    assert tj["tilestats"]["layers"][0]["count"] == len(want)
    assert set(by_id(maps.features(tj, 0, 0, 0))) == want
    # A zoomed tile applies the filter too.
    extent = int(1024 * tj["tileResolution"])
    x, y = mvt.tile_of(-3.70, 40.42, 5)
    assert set(by_id(maps.features(tj, 5, x, y))) == expected_points(5, x, y, extent, keep=keep)


def test_polygons_in_3857(maps, polys_tj):
    extent = int(1024 * polys_tj["tileResolution"])
    feats = maps.features(polys_tj, 0, 0, 0)
    assert {f.properties["label"] for f in feats} == {r[1] for r in POLY_ROWS}
    for i, label, rank, w, s, e, n in POLY_ROWS:
        lon, lat = (w + e) / 2, (s + n) / 2
        for z in (3, 4):
            x, y = mvt.tile_of(lon, lat, z)
            tile_w, tile_n = mvt.to_lonlat(z, x, y, 1, 0, 0)
            tile_e, tile_s = mvt.to_lonlat(z, x, y, 1, 1, 1)
            assert tile_w < w and e < tile_e and tile_s < s and n < tile_n, "the box must fit in its tile"
            (f,) = [f for f in maps.features(polys_tj, z, x, y) if f.properties["label"] == label]
            assert f.type == "POLYGON"
            assert f.properties == {"id": i, "label": label, "rank": rank}
            (ring,) = f.geometry
            corners = [mvt.to_lonlat(z, x, y, extent, px, py) for px, py in ring]
            tol = pixel_tolerance(z, extent)
            assert min(c[0] for c in corners) == pytest.approx(w, abs=tol)
            assert max(c[0] for c in corners) == pytest.approx(e, abs=tol)
            assert min(c[1] for c in corners) == pytest.approx(s, abs=tol)
            assert max(c[1] for c in corners) == pytest.approx(n, abs=tol)
    # Far from every box: nothing.
    assert maps.tile(polys_tj, 4, *mvt.tile_of(-150, -40, 4)).status == 204


def test_lines_in_25830(maps, lines_tj):
    extent = int(1024 * lines_tj["tileResolution"])
    rows = {r[1]: r for r in LINE_ROWS}
    z = 8
    x, y = mvt.tile_of(-3.70, 40.42, z)
    feats = {f.properties["road"]: f for f in maps.features(lines_tj, z, x, y)}
    assert set(feats) == {"A-6", "M-30"}
    tol = pixel_tolerance(z, extent)
    for road in ("A-6", "M-30"):
        f = feats[road]
        assert f.type == "LINESTRING"
        assert f.properties == {"id": rows[road][0], "road": road, "lanes": rows[road][2]}
        (part,) = f.geometry
        got = [mvt.to_lonlat(z, x, y, extent, px, py) for px, py in part]
        assert len(got) == len(rows[road][3])
        for (glon, glat), (lon, lat) in zip(got, rows[road][3]):
            assert abs(glon - lon) <= tol and abs(glat - lat) <= tol, (road, got)
    x, y = mvt.tile_of(-5.95, 37.37, z)
    assert "Sevilla" in {f.properties["road"] for f in maps.features(lines_tj, z, x, y)}


@pytest.mark.parametrize("z", [0, 1, 2, 3])
def test_low_zoom_tiles_of_a_utm_table(maps, lines_tj, z):
    """Clients start at low zooms: tiles whose envelope reaches far outside the UTM zone must still
    work for a source table in SRID 25830 (the long line is ≥ 16 px long even at z0)."""
    x, y = mvt.tile_of(-3.0, 39.5, z)
    roads = {f.properties["road"] for f in maps.features(lines_tj, z, x, y)}
    assert "Long" in roads
    # And the tiles elsewhere on the planet are simply empty.
    far = {mvt.tile_of(-150, -40, z), mvt.tile_of(150, -40, z)} | ({mvt.tile_of(150, 60, z)} if z >= 2 else set())
    for ox, oy in far - {(x, y)}:
        r = maps.tile(lines_tj, z, ox, oy)
        assert r.status == 204, (ox, oy, r)


@pytest.mark.parametrize("lon,lat", [(-150, -40), (150, 60), (100, -60), (-100, 30)])
def test_far_away_tiles_of_a_utm_table_are_empty(maps, lines_tj, lon, lat):
    """Tiles on the other side of the planet from a UTM 30N table: 204 at every zoom, never an error."""
    bad = {}
    for z in (4, 6, 10, 14):
        x, y = mvt.tile_of(lon, lat, z)
        r = maps.tile(lines_tj, z, x, y)
        if r.status != 204:
            bad[(z, x, y)] = (r.status, r.text[:200])
    assert not bad, bad


def test_empty_tile_is_204(maps, points_tj):
    r = maps.tile(points_tj, 6, *mvt.tile_of(-150, -40, 6))
    assert r.status == 204 and r.body == b""
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert r.header("Content-Type") in (None, TILE_TYPE)
    # Max zoom, valid coordinates, nothing there.
    last = (1 << 24) - 1
    assert maps.tile(points_tj, 24, last, last).status == 204


def test_tile_headers_and_auth_forms(maps, points_tj):
    z, (x, y) = 4, mvt.tile_of(-3.70, 40.42, 4)
    r = maps.tile(points_tj, z, x, y)
    assert r.status == 200
    assert any("Authorization" in v for v in r.all("Vary")), r.all("Vary")
    assert r.header("Cache-Control")
    body = r.body
    # deck.gl's test app puts the token in the URL.
    path = maps.tile_path(points_tj, z, x, y) + "&access_token=" + maps.star
    r2 = maps.api.get(path)
    assert r2.status == 200 and r2.body == body
    # The header wins over the query parameter.
    assert maps.api.get(maps.tile_path(points_tj, z, x, y) + "&access_token=nope", token=maps.star).status == 200
    assert_error(maps.api.get(path, token="nope"), 401)
    # Same source, same tile, same bytes.
    assert maps.tile(points_tj, z, x, y).body == body


def test_same_data_gives_the_same_tile_bytes_whatever_the_row_order(maps, stack):
    """Features are ordered in the tile, not left in the order the plan reads the rows: the table is
    rewritten with its rows in reverse physical order (same data, new data version, so no cache can
    answer), including several rows at the same point that only their properties tell apart."""
    h.warehouse(stack, "DROP TABLE IF EXISTS e2e_maps_order; CREATE TABLE e2e_maps_order (id int, name text, geom geometry(Point, 4326));"
                       "INSERT INTO e2e_maps_order SELECT g, 'n' || g, ST_SetSRID(ST_MakePoint(-3.70 + (g % 10) * 0.01, 40.42), 4326)"
                       " FROM generate_series(1, 30) g ORDER BY g;")
    z, (x, y) = 8, mvt.tile_of(-3.65, 40.42, 8)
    first_tj = maps.tilejson(maps.source("table", {"name": "public.e2e_maps_order"}))
    first = maps.tile(first_tj, z, x, y)
    assert first.status == 200 and len(mvt.decode(first.body)["default"].features) == 30
    h.warehouse(stack, "CREATE TEMP TABLE o AS SELECT * FROM e2e_maps_order ORDER BY id DESC;"
                       "TRUNCATE e2e_maps_order; INSERT INTO e2e_maps_order SELECT * FROM o;")
    again_tj = maps.tilejson(maps.source("table", {"name": "public.e2e_maps_order"}))
    assert again_tj["tiles"][0] != first_tj["tiles"][0], "a new data version: nothing cached can answer"
    again = maps.tile(again_tj, z, x, y)
    assert again.status == 200 and again.body == first.body


def test_tile_preflight(maps, points_tj):
    r = maps.api.request("OPTIONS", maps.tile_path(points_tj, 1, 0, 0),
                         headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET",
                                  "Access-Control-Request-Headers": "authorization"})
    assert r.status in (200, 204)
    assert r.header("Access-Control-Allow-Origin") in ("*", "https://app.example.com")
    assert "authorization" in (r.header("Access-Control-Allow-Headers") or "").lower()


HOSTILE = [
    ("-1", "0", "0"), ("25", "0", "0"), ("99", "0", "0"), ("9999", "0", "0"),
    ("0", "1", "0"), ("0", "0", "1"), ("3", "8", "0"), ("3", "0", "8"), ("24", str(1 << 24), "0"),
    ("1.5", "0", "0"), ("1", "0.0", "0"), ("1", "0", "1e0"), ("abc", "0", "0"), ("1", "x", "0"),
    ("99999999999999999999", "0", "0"), ("1", "99999999999999999999999999", "0"),
    ("0x1", "0", "0"), ("+1", "0", "0"), ("%201", "0", "0"), ("%D9%A1", "0", "0"),
    ("1", "-0", "0"), ("NaN", "0", "0"), ("1", "0", "1.mvt"), ("1", "0", "1%20"),
]


@pytest.mark.parametrize("z,x,y", HOSTILE)
def test_hostile_tile_coordinates(maps, points_tj, z, x, y):
    """B7: a 400 JSON error (with CORS) before any authentication or query."""
    path = maps.tile_path(points_tj, z, x, y)
    for token in (maps.star, None):
        r = maps.api.get(path, token=token)
        assert_error(r, 400, "invalid_tile")
    # Not even a source is needed to be refused.
    assert_error(maps.api.get(f"{MAPS}/table/{z}/{x}/{y}?source=nope"), 400, "invalid_tile")


def test_nul_byte_in_tile_coordinates(maps, points_tj):
    # nginx refuses a NUL in the path while reading the request line, before the maps-api: a 400,
    # never a 5xx. (It cannot be the JSON contract: nginx cannot route a request it failed to parse.)
    r = maps.api.get(maps.tile_path(points_tj, 1, 0, "0%00"), token=maps.star)
    assert r.status == 400, r


def test_hostile_coordinates_run_no_query(maps, points_tj):
    """B7 'before any query': no warehouse statement runs for them (counted on the warehouse)."""
    stack = maps.stack

    def activity() -> str:
        # Every backend of the warehouse with the time its last statement started (live, not sampled).
        return stack.psql("SELECT string_agg(pid || ':' || coalesce(query_start::text, '-'), ',' ORDER BY pid) "
                          "FROM pg_stat_activity WHERE datname = 'carto_dw' AND pid <> pg_backend_pid()")

    assert maps.tile(points_tj, 0, 0, 0).status == 200  # the pool has connections
    before = activity()
    assert before
    for z, x, y in HOSTILE:
        assert maps.api.get(maps.tile_path(points_tj, z, x, y), token=maps.star).status == 400
    assert activity() == before


def test_tile_format_and_source_errors(maps, points_tj):
    path = maps.tile_path(points_tj, 1, 0, 0)
    for fmt in ("binary", "json", "geojson", "pbf"):
        assert_error(maps.api.get(path.replace("formatTiles=mvt", f"formatTiles={fmt}"), token=maps.star),
                     400, "unsupported_format")
    base = path.split("?")[0]
    assert_error(maps.api.get(base, token=maps.star), 400, "missing_parameter")
    assert_error(maps.api.get(base + "?source=&formatTiles=mvt", token=maps.star), 400, "missing_parameter")
    assert_error(maps.api.get(base + "?source=AAAAAAAAAAAAAAAAAAAAAA&formatTiles=mvt", token=maps.star),
                 404, "source_not_found")
    sid = source_id(points_tj["tiles"][0])
    assert_error(maps.api.get(f"/api/v3/maps/other_conn/table/1/0/0?source={sid}&formatTiles=mvt",
                              token=maps.star), 404)
    assert_error(maps.api.get(path), 401)


def test_tile_resolution_sets_the_extent(maps):
    for res, extent in (("0.25", 256), ("1", 1024), ("4", 4096)):
        tj = maps.tilejson(maps.source("table", {"name": POINTS, "tileResolution": res}))
        x, y = mvt.tile_of(-3.70, 40.42, 4)
        feats = by_id(maps.features(tj, 4, x, y))
        assert set(feats) == expected_points(4, x, y, extent)


# ============================================================================================
# Stats API (§3)


def test_stats_number(maps):
    doc = assert_ok(maps.api.get(f"{STATS}/{POINTS}/population", params=CLIENT_PARAMS, token=maps.star))
    pops = sorted(r[2] for r in POINT_ROWS if r[2] is not None)
    assert doc["attribute"] == "population" and doc["type"] == "Number"
    assert (doc["min"], doc["max"], doc["sum"]) == (min(pops), max(pops), sum(pops))
    assert doc["avg"] == pytest.approx(sum(pops) / len(pops))
    q = doc["quantiles"]
    assert len(q[4]) == 5 and q[4][0] == min(pops) and q[4][-1] == max(pops)
    for n in range(1, len(q)):
        assert len(q[n]) == n + 1, n
        assert q[n] == sorted(q[n]), n
        # percentile_disc: the smallest value whose cumulative share reaches i/n.
        want = [pops[max(0, math.ceil((i / n) * len(pops)) - 1)] for i in range(n + 1)]
        assert q[n] == want, (n, q[n], want)
    doc = assert_ok(maps.api.get(f"{STATS}/{POINTS}/score", token=maps.star))
    assert (doc["min"], doc["max"]) == (0.25, 4.0)


def test_stats_string_boolean_timestamp(maps):
    doc = assert_ok(maps.api.get(f"{STATS}/{POINTS}/kind", token=maps.star))
    assert doc["type"] == "String"
    assert doc["categories"] == [{"category": "capital", "frequency": 6}, {"category": "city", "frequency": 1},
                                 {"category": None, "frequency": 1}]
    doc = assert_ok(maps.api.get(f"{STATS}/{POINTS}/active", token=maps.star))
    assert doc["type"] == "Boolean"
    assert doc["categories"] == [{"category": True, "frequency": 4}, {"category": False, "frequency": 3},
                                 {"category": None, "frequency": 1}]
    doc = assert_ok(maps.api.get(f"{STATS}/{POINTS}/created", token=maps.star))
    assert doc["type"] == "Timestamp"
    created = [datetime.fromisoformat(r[6]) for r in POINT_ROWS]
    assert parse_ts(doc["min"]) == min(created) and parse_ts(doc["max"]) == max(created)
    doc = assert_ok(maps.api.get(f"{STATS}/{POINTS}/name", token=maps.star))
    assert sorted(c["category"] for c in doc["categories"]) == sorted(r[1] for r in POINT_ROWS)
    assert all(c["frequency"] == 1 for c in doc["categories"])


def test_stats_extent_in_any_srid(maps):
    for table, want in (
        (POINTS, [min(r[7] for r in POINT_ROWS), min(r[8] for r in POINT_ROWS),
                  max(r[7] for r in POINT_ROWS), max(r[8] for r in POINT_ROWS)]),
        (POLYS, [min(r[3] for r in POLY_ROWS), min(r[4] for r in POLY_ROWS),
                 max(r[5] for r in POLY_ROWS), max(r[6] for r in POLY_ROWS)]),
        (LINES, [min(p[0] for r in LINE_ROWS for p in r[3]), min(p[1] for r in LINE_ROWS for p in r[3]),
                 max(p[0] for r in LINE_ROWS for p in r[3]), max(p[1] for r in LINE_ROWS for p in r[3])]),
    ):
        doc = assert_ok(maps.api.get(f"{STATS}/{table}/geom", params={"spatialDataType": "geo"}, token=maps.star))
        e = doc["extent"]
        assert [e["xmin"], e["ymin"], e["xmax"], e["ymax"]] == pytest.approx(want, abs=1e-4), table


def test_stats_query_form_and_filters(maps):
    q = "SELECT * FROM public.e2e_maps_points WHERE cartodb_id <= $1"
    for method in ("GET", "POST"):
        params = {"q": q, "queryParameters": [3] if method == "POST" else json.dumps([3]), **CLIENT_PARAMS}
        if method == "GET":
            r = maps.api.get(f"{STATS}/population", params=params, token=maps.star)
        else:
            r = maps.api.post(f"{STATS}/population", json_body=params, token=maps.star)
        doc = assert_ok(r)
        assert (doc["min"], doc["max"], doc["sum"]) == (500000, 3300000, 5900000), method
    doc = assert_ok(maps.api.get(f"{STATS}/geom", params={"q": "SELECT * FROM public.e2e_maps_lines WHERE id = 3"},
                                 token=maps.star))
    assert doc["extent"]["xmin"] == pytest.approx(-6.0, abs=1e-6)
    filters = json.dumps({"kind": {"in": {"values": ["city"]}}})
    doc = assert_ok(maps.api.get(f"{STATS}/{POINTS}/population", params={"filters": filters}, token=maps.star))
    assert doc["min"] == doc["max"] == 5300000
    doc = assert_ok(maps.api.get(f"{STATS}/{POINTS}/geom", params={"filters": filters}, token=maps.star))
    assert doc["extent"]["xmin"] == pytest.approx(151.21)


def test_stats_errors(maps):
    doc = assert_error(maps.api.get(f"{STATS}/{POINTS}/nope", token=maps.star), 400, "column_not_found")
    assert doc["column_name"] == "nope"
    doc = assert_error(maps.api.get(f"{STATS}/population", params={"q": "SELECT 1 AS x"}, token=maps.star),
                       400, "column_not_found")
    assert doc["column_name"] == "population"
    assert_error(maps.api.get(f"{STATS}/population", token=maps.star), 400, "missing_parameter")
    assert_error(maps.api.get(f"{STATS}/public.e2e_maps_no_such/population", token=maps.star), 404)
    doc = assert_error(maps.api.get(f"{STATS}/{POINTS}/population",
                                    params={"filters": json.dumps({"nope": {"in": {"values": [1]}}})},
                                    token=maps.star), 400, "column_not_found")
    assert doc["column_name"] == "nope"
    assert_error(maps.api.get(f"{STATS}/{POINTS}/population"), 401)


# ============================================================================================
# grants (A1)


def _hs(maps, token, table):
    return maps.handshake("table", {"name": table}, token)


def test_no_token_bad_token_and_no_maps_api(maps, points_tj):
    tile = maps.tile_path(points_tj, 0, 0, 0)
    tj_path = maps.local(maps.source("table", {"name": POINTS})["tilejson"]["url"][0])
    requests = [
        lambda t: maps.handshake("table", {"name": POINTS}, t),
        lambda t: maps.handshake("table", {"name": POINTS}, t, method="POST"),
        lambda t: maps.api.get(tj_path, token=t),
        lambda t: maps.api.get(tile, token=t),
        lambda t: maps.api.get(f"{STATS}/{POINTS}/population", token=t),
    ]
    for req in requests:
        assert_error(req(None), 401)
        assert_error(req("not-a-token"), 401)
        assert_error(req(maps.tok_sql_only), 403, "api_not_allowed")
        assert req(maps.tok_points).status == 200


def test_table_grant_matrix(maps):
    """A token for table A reaches A on every endpoint and B on none, even with B's source id."""
    a_hs = maps.source("table", {"name": POINTS})
    b_hs = maps.source("table", {"name": POLYS})  # B's source id, instantiated by a `*` token
    a_tj, b_tj = maps.tilejson(a_hs), maps.tilejson(b_hs)
    for tok in (maps.tok_points, maps.tok_points_short):
        # A: handshake (both name forms), TileJSON, tile, stats.
        assert_ok(_hs(maps, tok, POINTS))
        assert_ok(_hs(maps, tok, "e2e_maps_points"))
        assert_ok(maps.handshake("table", {"name": POINTS}, tok, method="POST"))
        assert maps.tilejson(a_hs, tok) == a_tj
        assert maps.tile(a_tj, 0, 0, 0, tok).status == 200
        assert_ok(maps.api.get(f"{STATS}/{POINTS}/population", token=tok))
        # B: 403 everywhere.
        for r in (_hs(maps, tok, POLYS), _hs(maps, tok, "e2e_maps_polys"),
                  maps.handshake("table", {"name": POLYS}, tok, method="POST"),
                  maps.tilejson_resp(b_hs, tok), maps.tile(b_tj, 0, 0, 0, tok),
                  maps.api.get(f"{STATS}/{POLYS}/rank", token=tok),
                  maps.api.get(f"{STATS}/rank", params={"q": "SELECT * FROM public.e2e_maps_polys"}, token=tok),
                  maps.handshake("query", {"q": "SELECT * FROM public.e2e_maps_points"}, tok),
                  _hs(maps, tok, HIDDEN), maps.api.get(f"{STATS}/{HIDDEN}/secret", token=tok)):
            assert_error(r, 403, "source_not_granted")


def test_schema_grant(maps):
    tok = maps.tok_schema
    hs = assert_ok(_hs(maps, tok, HIDDEN))
    tj = maps.tilejson(hs, tok)
    feats = maps.features(tj, 0, 0, 0, tok)
    assert [f.properties["secret"] for f in feats] == ["hidden-value"]
    assert_ok(maps.api.get(f"{STATS}/{HIDDEN}/secret", token=tok))
    assert_error(_hs(maps, tok, POINTS), 403, "source_not_granted")
    assert_error(maps.tile(maps.tilejson(maps.source("table", {"name": POINTS})), 0, 0, 0, tok), 403,
                 "source_not_granted")


def test_query_grant_is_verbatim(maps):
    tok = maps.tok_query
    hs = assert_ok(maps.handshake("query", {"q": QUERY_GRANT}, tok))
    # Outer whitespace and a trailing semicolon do not matter; anything else does, inner whitespace
    # included (issue 11, case 6).
    hs2 = assert_ok(maps.handshake("query", {"q": "  " + QUERY_GRANT + " ;\n  "}, tok, method="POST"))
    tj = maps.tilejson(hs, tok)
    assert {f.properties["name"] for f in maps.features(tj, 0, 0, 0, tok)} == {"Madrid", "Paris", "Tokyo", "Sydney"}
    assert maps.tilejson_resp(hs2, tok).status == 200
    assert_ok(maps.api.get(f"{STATS}/population", params={"q": QUERY_GRANT}, token=tok))
    for altered in (QUERY_GRANT.replace("1000000", "0"), QUERY_GRANT + " OR true",
                    QUERY_GRANT.replace("population >", "population >="), QUERY_GRANT.replace(" FROM ", "\n  FROM ")):
        assert_error(maps.handshake("query", {"q": altered}, tok), 403, "source_not_granted")
        assert_error(maps.api.get(f"{STATS}/population", params={"q": altered}, token=tok), 403, "source_not_granted")
    assert_error(_hs(maps, tok, POINTS), 403, "source_not_granted")
    assert_error(maps.api.get(f"{STATS}/{POINTS}/population", token=tok), 403, "source_not_granted")
    # An altered query instantiated by `*` cannot be used through the query token either.
    other = maps.source("query", {"q": QUERY_GRANT.replace("1000000", "0")})
    other_tj = maps.tilejson(other)
    assert_error(maps.tilejson_resp(other, tok), 403, "source_not_granted")
    assert_error(maps.tile(other_tj, 0, 0, 0, tok), 403, "source_not_granted")


def test_query_source_with_a_trailing_semicolon(maps):
    """The grant check treats `q;` as `q` (Grant.normalizeSQL); the source must then work too, for a
    query grant and for `*` alike, and tiles/TileJSON/stats of it must be served."""
    for tok in (maps.tok_query, maps.star):
        for q in (QUERY_GRANT + ";", QUERY_GRANT + " ;\n"):
            hs = assert_ok(maps.handshake("query", {"q": q}, tok))
            tj = maps.tilejson(hs, tok)
            assert tj["tilestats"]["layers"][0]["count"] == 4
            assert len(maps.features(tj, 0, 0, 0, tok)) == 4
            doc = assert_ok(maps.api.get(f"{STATS}/population", params={"q": q}, token=tok))
            assert doc["min"] == 2100000


def test_aggregation_expression_for_scoped_tokens(maps):
    tok = maps.tok_points
    for exp in ("count(*) AS n", "sum(population) AS total, 1 AS one", "avg(score) avg_score"):
        assert_ok(maps.handshake("table", {"name": POINTS, "aggregationExp": exp}, tok))
    for exp in ("pg_sleep(1) AS x", "(SELECT secret FROM e2e_maps_s.hidden) AS s", "count(*) AS n; DROP TABLE x",
                "count(*) AS n --", "sum(population)::text AS t"):
        assert_error(maps.handshake("table", {"name": POINTS, "aggregationExp": exp}, tok), 403,
                     "source_not_granted")


@pytest.fixture(scope="module")
def foreign_token(maps):
    """An API token of another organisation (created with the CLI, like an admin would)."""
    stack = maps.stack
    email = "maps-other-" + os.urandom(3).hex() + "@example.org"
    h.tessera(stack, "create-admin", "--email", email, "--password", "other-" + os.urandom(8).hex(),
              "--organization", "MapsOther")
    return _cli_token(stack, "*", email=email)


def test_another_organisations_source_ids_are_404(maps, points_tj, foreign_token):
    hs = maps.source("table", {"name": POINTS})
    assert_error(maps.tilejson_resp(hs, foreign_token), 404)
    assert_error(maps.tile(points_tj, 0, 0, 0, foreign_token), 404)
    # And org 1's connection does not exist for org 2.
    assert_error(_hs(maps, foreign_token, POINTS), 404)
    assert_error(maps.api.get(f"{STATS}/{POINTS}/population", token=foreign_token), 404)


# ============================================================================================
# per-tile budgets (B11), on a stack of their own


DENSE_N = 400
BIG_N = 20_000


@pytest.fixture(scope="module")
def budget(request):
    s = h.boot_stack("mapsbudget", {"TESSERA_TILE_MAX_FEATURES": "50", "TESSERA_TILE_MAX_BYTES": "4096"})
    try:
        h.warehouse(s, f"""
            CREATE TABLE public.e2e_maps_dense (n integer, label text, geom geometry(Point, 4326));
            INSERT INTO public.e2e_maps_dense
              SELECT i, 'p' || i, ST_SetSRID(ST_MakePoint(2 + (i % 20) * 0.01, 41 + (i / 20) * 0.01), 4326)
              FROM generate_series(0, {DENSE_N - 1}) i;
            CREATE INDEX ON public.e2e_maps_dense USING gist (geom);
            CREATE TABLE public.e2e_maps_fat (n integer, blob text, geom geometry(Point, 4326));
            INSERT INTO public.e2e_maps_fat
              SELECT i, repeat(chr(65 + i % 26), 300) || i, ST_SetSRID(ST_MakePoint(-60 + i * 0.5, -10), 4326)
              FROM generate_series(0, 39) i;
            CREATE INDEX ON public.e2e_maps_fat USING gist (geom);
            -- Big enough for an over-budget tile to be drawn from a sample of the table (rows >> cap).
            CREATE TABLE public.e2e_maps_big (n integer, geom geometry(Point, 4326));
            INSERT INTO public.e2e_maps_big
              SELECT i, ST_SetSRID(ST_MakePoint(-100 + (i % 200) * 1.0, -50 + (i / 200) * 1.0), 4326)
              FROM generate_series(0, {BIG_N - 1}) i;
            CREATE INDEX ON public.e2e_maps_big USING gist (geom);
            ANALYZE public.e2e_maps_big;
        """)
        m = Maps.__new__(Maps)
        m.stack, m.api = s, h.Api(s)
        m.star = _cli_token(s, "*")
        yield m
    finally:
        h.finish_stack(s, keep=bool(request.session.testsfailed))


def test_feature_budget_thins_deterministically(budget):
    """Over the budget, a tile is thinned (Thinning.swift: the top features of each grid cell, here 1 per cell
    of a 4x4 grid at TESSERA_TILE_MAX_FEATURES=50): within the budget, the same bytes every time, and the
    TileJSON says features are dropped. Under the budget nothing is dropped."""
    tj = budget.tilejson(budget.source("table", {"name": "public.e2e_maps_dense", "columns": "n"}))
    assert tj["tilestats"]["layers"][0]["count"] == DENSE_N
    assert tj["fraction_dropped_per_zoom"][0] > 0.9
    bodies = []
    for _ in range(3):
        r = budget.tile(tj, 0, 0, 0)
        assert r.status == 200 and r.header("Content-Type") == TILE_TYPE
        assert r.header("X-Tessera-Thinning")
        bodies.append(r.body)
    assert bodies[0] == bodies[1] == bodies[2]
    feats = mvt.decode(bodies[0])["default"].features
    ids = [int(f.properties["n"]) for f in feats]
    assert 0 < len(ids) <= 50 and len(set(ids)) == len(ids) and all(0 <= i < DENSE_N for i in ids)
    # A zoomed tile over the same cluster keeps more of it, still within the budget.
    x, y = mvt.tile_of(2.1, 41.1, 10)
    assert len(ids) < len(mvt.decode(budget.tile(tj, 10, x, y).body)["default"].features) <= 50
    # Under the budget nothing is dropped.
    small = budget.tilejson(budget.source("table", {"name": "public.e2e_maps_dense", "columns": "n",
                                                     "filters": json.dumps({"n": {"between": {"values": [[0, 29]]}}})}))
    assert "fraction_dropped_per_zoom" not in small
    feats = mvt.decode(budget.tile(small, 0, 0, 0).body)["default"].features
    assert sorted(int(f.properties["n"]) for f in feats) == list(range(30))


def test_feature_budget_on_a_big_table_thins_over_the_whole_table(budget):
    """rows >> cap: the thinned tile draws its features from all over the table (one per grid cell), not from
    the first rows in scan order; the same ones every time."""
    tj = budget.tilejson(budget.source("table", {"name": "public.e2e_maps_big", "columns": "n"}))
    bodies = [budget.tile(tj, 0, 0, 0).body for _ in range(3)]
    assert bodies[0] == bodies[1] == bodies[2]
    ids = [int(f.properties["n"]) for f in mvt.decode(bodies[0])["default"].features]
    assert 0 < len(ids) <= 50 and len(set(ids)) == len(ids) and all(0 <= i < BIG_N for i in ids)
    assert max(ids) - min(ids) > BIG_N // 2, ids  # spread over the table, not one block of it
    # A tile over a corner of the data: within the budget, from that corner only.
    x, y = mvt.tile_of(-95, -45, 4)
    feats = mvt.decode(budget.tile(tj, 4, x, y).body)["default"].features
    assert 0 < len(feats) <= 50
    assert all(int(f.properties["n"]) % 200 < 40 and int(f.properties["n"]) // 200 < 40 for f in feats)


def test_byte_budget(budget):
    tj = budget.tilejson(budget.source("table", {"name": "public.e2e_maps_fat"}))
    r = budget.tile(tj, 0, 0, 0)
    assert r.status == 200, r
    assert len(r.body) <= 4096
    feats = mvt.decode(r.body)["default"].features
    assert 0 < len(feats) < 40
    for f in feats:  # surviving features are whole
        n = int(f.properties["n"])
        assert f.properties["blob"] == chr(65 + n % 26) * 300 + str(n)
    assert budget.tile(tj, 0, 0, 0).body == r.body


def test_feature_ids_match_the_pick_model(maps, points_tj):
    """_carto_feature_id in tiles is md5 of the geometry's WKB, the id the pick model regenerates."""
    feats = maps.features(points_tj, 0, 0, 0)
    want = dict(line.rsplit("|", 1) for line in maps.stack.psql(
        "SELECT name, md5(ST_AsBinary(geom)) FROM e2e_maps_points", dbname="carto_dw", user="carto_dw").splitlines())
    assert {f.properties["name"]: f.feature_id for f in feats} == {n: want[n] for n in (f.properties["name"] for f in feats)}
