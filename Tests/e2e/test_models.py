"""Widget models (carto-v3-api.md §5): `GET|POST /api/v3/sql/{connection}/model/{model}` for formula,
category, histogram, range, table, timeseries, scatterplot, aggregations and pick, in the GET form
(JSON-stringified params in the query string) and the POST form (a JSON body), with filters (§5.3),
spatial filters, column validation, injection attempts and the grant matrix.

Fixture: its own small deterministic tables in the carto_dw warehouse (created as role carto_dw)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from helpers import assert_error, assert_ok, warehouse

CONN = "carto_dw"
TABLE = "public.mdl_items"
OTHER = "public.mdl_other"
MERC = "public.mdl_merc"
QUERY = "SELECT * FROM public.mdl_items"

# (id, name, category, score, active, ts, (lon, lat) or None)
ROWS = [
    (1, "alpha", "a", 10, True, "2024-01-01T00:00:00Z", (0, 0)),
    (2, "beta", "a", 20, False, "2024-01-15T12:00:00Z", (1, 1)),
    (3, "gamma", "b", 30, True, "2024-02-01T00:00:00Z", (2, 2)),
    (4, "delta", "b", 40, True, "2024-02-20T06:00:00Z", (10, 10)),
    (5, "epsilon", "c", 50, False, "2024-03-05T00:00:00Z", (11, 11)),
    (6, "zeta", "a", None, True, "2024-03-31T23:59:59Z", (-5, -5)),
    (7, "eta", None, 70, False, "2025-01-01T00:00:00Z", (20, 20)),
    (8, "Theta_%", "c", 80, True, None, None),
]


def lit(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


FIXTURE = """
DROP TABLE IF EXISTS public.mdl_items, public.mdl_other, public.mdl_merc;
CREATE TABLE public.mdl_items (
    id integer PRIMARY KEY,
    name text,
    category text,
    score integer,
    active boolean,
    ts timestamptz,
    geom geometry(Point, 4326),
    "Mixed Case" integer
);
INSERT INTO public.mdl_items VALUES
""" + ",\n".join(
    f"({i}, {lit(n)}, {lit(c)}, {lit(s)}, {lit(a)}, {lit(t)}::timestamptz, "
    + (f"ST_SetSRID(ST_MakePoint({g[0]}, {g[1]}), 4326)" if g else "NULL") + f", {i * 100})"
    for (i, n, c, s, a, t, g) in ROWS) + """;
CREATE TABLE public.mdl_other (id integer, secret text, geom geometry(Point, 4326));
INSERT INTO public.mdl_other VALUES (1, 'other-secret', ST_SetSRID(ST_MakePoint(0, 0), 4326));
DROP SEQUENCE IF EXISTS public.mdl_seq;
CREATE SEQUENCE public.mdl_seq;
ALTER TABLE public.mdl_items ADD COLUMN day date;
UPDATE public.mdl_items SET day = (ts AT TIME ZONE 'UTC')::date;
CREATE TABLE public.mdl_merc (id integer, geom geometry(Point, 3857));
INSERT INTO public.mdl_merc VALUES
    (1, ST_Transform(ST_SetSRID(ST_MakePoint(0, 0), 4326), 3857)),
    (2, ST_Transform(ST_SetSRID(ST_MakePoint(1, 1), 4326), 3857)),
    (3, ST_Transform(ST_SetSRID(ST_MakePoint(10, 10), 4326), 3857));
"""


def box(x0, y0, x1, y1):
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


class Models:
    def __init__(self, stack, api):
        self.stack = stack
        self.api = api

    def call(self, model: str, token: str | None, *, method: str = "GET", source: str = TABLE, type: str = "table",
             params: dict | None = None, filters: dict | None = None, conn: str = CONN, **extra):
        """The request @carto/api-client's executeModel sends (same parameter set, both forms)."""
        fields = {"type": type, "client": "deck-gl-carto", "source": source, "params": params or {},
                  "queryParameters": "", "filters": filters or {}, "filtersLogicalOperator": "and",
                  "spatialDataType": "geo", "spatialDataColumn": "geom", "tag-mapId": "m1"}
        fields.update(extra)
        path = f"/api/v3/sql/{conn}/model/{model}"
        if method == "GET":
            return self.api.get(path, params=fields, token=token)
        return self.api.post(path, json_body=fields, token=token)

    def ok(self, model: str, token: str, **kw) -> dict:
        return assert_ok(self.call(model, token, **kw))


@pytest.fixture(scope="module")
def models(stack, api):
    warehouse(stack, FIXTURE)
    return Models(stack, api)


def cli_token(stack, source: str, apis: str = "sql,maps") -> str:
    out = stack.tessera("tokens", "create", "--email", stack.admin_email, "--connection", CONN,
                        "--source", source, "--apis", apis)
    return out.strip().splitlines()[-1].strip()


@pytest.fixture(scope="module")
def token(stack, models):
    return cli_token(stack, "*")


@pytest.fixture(scope="module")
def scoped_token(stack, models):
    return cli_token(stack, TABLE)


@pytest.fixture(scope="module")
def maps_only_token(stack, models):
    return cli_token(stack, "*", apis="maps")


METHODS = pytest.mark.parametrize("method", ["GET", "POST"])


# ---------------------------------------------------------------------------------------------
# models, GET and POST


@METHODS
def test_formula(models, token, method):
    def value(**params):
        doc = models.ok("formula", token, method=method, params=params)
        assert set(doc) == {"rows"} and len(doc["rows"]) == 1, doc
        return doc["rows"][0]["value"]

    assert value(column="*", operation="count") == 8
    assert value() == 8                                  # defaults: column *, count
    assert value(column="score", operation="count") == 8  # count counts rows
    assert value(column="score", operation="sum") == 300
    assert value(column="score", operation="avg") == pytest.approx(300 / 7)
    assert value(column="score", operation="min") == 10
    assert value(column="score", operation="max") == 80
    assert value(column="ts", operation="min") == ms("2024-01-01T00:00:00Z")
    assert value(column="ts", operation="max") == ms("2025-01-01T00:00:00Z")
    assert value(column="Mixed Case", operation="sum") == 3600
    assert value(column="name", operation="max") == "zeta"


@METHODS
def test_formula_empty_source(models, token, method):
    doc = models.ok("formula", token, method=method, params={"column": "score", "operation": "sum"},
                    filters={"category": {"in": {"values": ["nope"]}}})
    assert doc == {"rows": [{"value": None}]}
    doc = models.ok("formula", token, method=method, params={"operation": "count"},
                    filters={"category": {"in": {"values": ["nope"]}}})
    assert doc == {"rows": [{"value": 0}]}


@METHODS
def test_category(models, token, method):
    doc = models.ok("category", token, method=method,
                    params={"column": "category", "operation": "count", "operationColumn": "category"})
    assert doc == {"rows": [{"name": "a", "value": 3}, {"name": "b", "value": 2}, {"name": "c", "value": 2},
                            {"name": None, "value": 1}]}
    doc = models.ok("category", token, method=method,
                    params={"column": "category", "operation": "sum", "operationColumn": "score"})
    assert doc["rows"] == [{"name": "c", "value": 130}, {"name": "b", "value": 70}, {"name": None, "value": 70},
                           {"name": "a", "value": 30}]
    doc = models.ok("category", token, method=method,
                    params={"column": "category", "operation": "count", "orderBy": "alphabetical_desc"})
    assert [r["name"] for r in doc["rows"]] == ["c", "b", "a", None]
    doc = models.ok("category", token, method=method,
                    params={"column": "category", "operation": "count", "orderBy": "frequency_asc"})
    assert doc["rows"] == [{"name": None, "value": 1}, {"name": "b", "value": 2}, {"name": "c", "value": 2},
                           {"name": "a", "value": 3}]
    doc = models.ok("category", token, method=method, params={"column": "active"})
    assert doc["rows"] == [{"name": True, "value": 5}, {"name": False, "value": 3}]


@METHODS
def test_category_others(models, token, method):
    doc = models.ok("category", token, method=method,
                    params={"column": "category", "operation": "count", "othersThreshold": 2})
    assert doc == {"rows": [{"name": "a", "value": 3}, {"name": "b", "value": 2}], "metadata": {"others": 3}}
    doc = models.ok("category", token, method=method,
                    params={"column": "category", "operation": "sum", "operationColumn": "score", "othersThreshold": 1})
    assert doc == {"rows": [{"name": "c", "value": 130}], "metadata": {"others": 170}}
    doc = models.ok("category", token, method=method,
                    params={"column": "category", "operation": "max", "operationColumn": "score", "othersThreshold": 3})
    # c:80, null:70, b:40 listed; the rest (a) has max 20
    assert doc == {"rows": [{"name": "c", "value": 80}, {"name": None, "value": 70}, {"name": "b", "value": 40}],
                   "metadata": {"others": 20}}
    doc = models.ok("category", token, method=method,
                    params={"column": "category", "othersThreshold": 10})
    assert doc["metadata"] == {"others": 0} and len(doc["rows"]) == 4


@METHODS
def test_histogram(models, token, method):
    doc = models.ok("histogram", token, method=method, params={"column": "score", "operation": "count", "ticks": [20, 50]})
    assert doc == {"rows": [{"tick": 0, "value": 1}, {"tick": 1, "value": 3}, {"tick": 2, "value": 3}]}
    doc = models.ok("histogram", token, method=method, params={"column": "score", "operation": "sum", "ticks": [20, 50]})
    assert doc["rows"] == [{"tick": 0, "value": 10}, {"tick": 1, "value": 90}, {"tick": 2, "value": 200}]
    # empty bins are omitted; a value equal to a tick goes to the bin that starts there
    doc = models.ok("histogram", token, method=method, params={"column": "score", "ticks": [10, 15, 100, 200]})
    assert doc["rows"] == [{"tick": 1, "value": 1}, {"tick": 2, "value": 6}]
    doc = models.ok("histogram", token, method=method, params={"column": "score", "ticks": [12.5]})
    assert doc["rows"] == [{"tick": 0, "value": 1}, {"tick": 1, "value": 6}]


@METHODS
def test_range(models, token, method):
    assert models.ok("range", token, method=method, params={"column": "score"}) == {"rows": [{"min": 10, "max": 80}]}
    assert models.ok("range", token, method=method, params={"column": "ts"}) == {
        "rows": [{"min": ms("2024-01-01T00:00:00Z"), "max": ms("2025-01-01T00:00:00Z")}]}


@METHODS
def test_table(models, token, method):
    doc = models.ok("table", token, method=method,
                    params={"column": ["id", "name", "Mixed Case"], "sortBy": "score", "sortDirection": "desc",
                            "limit": 3, "offset": 1})
    assert doc == {"rows": [{"id": 7, "name": "eta", "Mixed Case": 700}, {"id": 5, "name": "epsilon", "Mixed Case": 500},
                            {"id": 4, "name": "delta", "Mixed Case": 400}], "metadata": {"total": 8}}
    doc = models.ok("table", token, method=method, params={"column": ["id", "score"], "sortBy": "score"})
    assert [r["id"] for r in doc["rows"]] == [1, 2, 3, 4, 5, 7, 8, 6]  # asc, nulls last; default limit 10
    doc = models.ok("table", token, method=method, params={"column": ["id"], "sortBy": "id"},
                    filters={"category": {"in": {"values": ["b"]}}})
    assert doc == {"rows": [{"id": 3}, {"id": 4}], "metadata": {"total": 2}}
    doc = models.ok("table", token, method=method, params={"column": ["id", "active", "ts"], "sortBy": "id", "limit": 1})
    assert doc["rows"][0]["id"] == 1 and doc["rows"][0]["active"] is True
    assert ms(doc["rows"][0]["ts"]) == ms("2024-01-01T00:00:00Z")
    doc = models.ok("table", token, method=method, params={"column": ["id"], "sortBy": "id", "offset": 100})
    assert doc == {"rows": [], "metadata": {"total": 8}}


@METHODS
def test_timeseries(models, token, method):
    doc = models.ok("timeseries", token, method=method,
                    params={"column": "ts", "stepSize": "month", "operation": "count", "operationColumn": "ts"})
    assert doc == {"rows": [{"name": ms("2024-01-01T00:00:00Z"), "value": 2}, {"name": ms("2024-02-01T00:00:00Z"), "value": 2},
                            {"name": ms("2024-03-01T00:00:00Z"), "value": 2}, {"name": ms("2025-01-01T00:00:00Z"), "value": 1}]}
    doc = models.ok("timeseries", token, method=method,
                    params={"column": "ts", "stepSize": "month", "operation": "avg", "operationColumn": "score"})
    assert doc["rows"] == [{"name": ms("2024-01-01T00:00:00Z"), "value": 15}, {"name": ms("2024-02-01T00:00:00Z"), "value": 35},
                           {"name": ms("2024-03-01T00:00:00Z"), "value": 50}, {"name": ms("2025-01-01T00:00:00Z"), "value": 70}]
    doc = models.ok("timeseries", token, method=method, params={"column": "ts", "stepSize": "month", "stepMultiplier": 2})
    assert doc["rows"] == [{"name": ms("2024-01-01T00:00:00Z"), "value": 4}, {"name": ms("2024-03-01T00:00:00Z"), "value": 2},
                           {"name": ms("2025-01-01T00:00:00Z"), "value": 1}]
    doc = models.ok("timeseries", token, method=method, params={"column": "ts", "stepSize": "year"})
    assert doc["rows"] == [{"name": ms("2024-01-01T00:00:00Z"), "value": 6}, {"name": ms("2025-01-01T00:00:00Z"), "value": 1}]


@METHODS
def test_timeseries_other_time_types(models, token, method):
    months = [{"name": ms("2024-01-01T00:00:00Z"), "value": 2}, {"name": ms("2024-02-01T00:00:00Z"), "value": 2},
              {"name": ms("2024-03-01T00:00:00Z"), "value": 2}, {"name": ms("2025-01-01T00:00:00Z"), "value": 1}]
    # date, timestamp without time zone (read as UTC) and epoch milliseconds
    assert models.ok("timeseries", token, method=method, params={"column": "day", "stepSize": "month"})["rows"] == months
    q = "SELECT ts AT TIME ZONE 'UTC' AS local_ts, (extract(epoch FROM ts) * 1000)::bigint AS epoch_ms FROM public.mdl_items"
    for column in ("local_ts", "epoch_ms"):
        doc = models.ok("timeseries", token, method=method, type="query", source=q, params={"column": column, "stepSize": "month"})
        assert doc["rows"] == months, column
    assert models.ok("range", token, method=method, params={"column": "day"}) == {
        "rows": [{"min": ms("2024-01-01T00:00:00Z"), "max": ms("2025-01-01T00:00:00Z")}]}
    doc = models.ok("timeseries", token, method=method, params={"column": "day", "stepSize": "week"})
    assert doc["rows"][-1] == {"name": ms("2024-12-30T00:00:00Z"), "value": 1}


def reference_buckets(seconds: int, origin: int = 0) -> list[dict]:
    counts: dict[int, int] = {}
    for r in ROWS:
        if r[5]:
            e = ms(r[5]) // 1000
            start = ((e - origin) // seconds * seconds + origin) * 1000
            counts[start] = counts.get(start, 0) + 1
    return [{"name": k, "value": v} for k, v in sorted(counts.items())]


@METHODS
@pytest.mark.parametrize("step,seconds,origin", [
    ("week", 604800, 345600), ("day", 86400, 0), ("hour", 3600, 0), ("minute", 60, 0), ("second", 1, 0)])
def test_timeseries_steps(models, token, method, step, seconds, origin):
    doc = models.ok("timeseries", token, method=method, params={"column": "ts", "stepSize": step})
    assert doc["rows"] == reference_buckets(seconds, origin)
    doc = models.ok("timeseries", token, method=method, params={"column": "ts", "stepSize": step, "stepMultiplier": 3})
    assert doc["rows"] == reference_buckets(seconds * 3, origin)


def test_timeseries_week_starts_monday(models, token):
    doc = models.ok("timeseries", token, params={"column": "ts", "stepSize": "week"},
                    filters={"id": {"in": {"values": [6]}}})  # Sunday 2024-03-31 → Monday 2024-03-25
    assert doc["rows"] == [{"name": ms("2024-03-25T00:00:00Z"), "value": 1}]


@METHODS
def test_timeseries_split_by_category(models, token, method):
    doc = models.ok("timeseries", token, method=method,
                    params={"column": "ts", "stepSize": "month", "splitByCategory": "category", "splitByCategoryLimit": 2})
    assert doc == {"rows": [{"name": ms("2024-01-01T00:00:00Z"), "category": "a", "value": 2},
                            {"name": ms("2024-02-01T00:00:00Z"), "category": "b", "value": 2},
                            {"name": ms("2024-03-01T00:00:00Z"), "category": "a", "value": 1}],
                   "metadata": {"categories": ["a", "b"]}}
    doc = models.ok("timeseries", token, method=method,
                    params={"column": "ts", "stepSize": "month", "splitByCategory": "category",
                            "splitByCategoryValues": ["c", "a"]})
    assert doc == {"rows": [{"name": ms("2024-01-01T00:00:00Z"), "category": "a", "value": 2},
                            {"name": ms("2024-03-01T00:00:00Z"), "category": "c", "value": 1},
                            {"name": ms("2024-03-01T00:00:00Z"), "category": "a", "value": 1}],
                   "metadata": {"categories": ["c", "a"]}}


@METHODS
def test_scatterplot(models, token, method):
    doc = models.ok("scatterplot", token, method=method,
                    params={"xAxisColumn": "id", "xAxisJoinOperation": "count", "yAxisColumn": "score",
                            "yAxisJoinOperation": "count", "limit": 500})
    assert sorted((r["x"], r["y"]) for r in doc["rows"]) == [(1, 10), (2, 20), (3, 30), (4, 40), (5, 50), (7, 70), (8, 80)]
    assert set(doc) == {"rows"}
    doc = models.ok("scatterplot", token, method=method, params={"xAxisColumn": "id", "yAxisColumn": "score", "limit": 2})
    assert len(doc["rows"]) == 2
    # several columns combined per row
    doc = models.ok("scatterplot", token, method=method,
                    params={"xAxisColumn": ["id", "score"], "xAxisJoinOperation": "sum", "yAxisColumn": "id"},
                    filters={"id": {"in": {"values": [3]}}})
    assert doc["rows"] == [{"x": 33, "y": 3}]


@METHODS
def test_aggregations(models, token, method):
    doc = models.ok("aggregations", token, method=method, params={"aggregations": [
        {"column": "score", "operation": "sum", "alias": "Total"},
        {"column": "*", "operation": "count", "alias": "n"},
        {"column": "score", "operation": "avg"},
        {"column": "ts", "operation": "max", "alias": "last"},
        {"column": "category", "operation": "count", "alias": "with_category"},
    ]})
    assert doc["rows"][0].pop("avg_score") == pytest.approx(300 / 7)
    assert doc == {"rows": [{"Total": 300, "n": 8, "last": ms("2025-01-01T00:00:00Z"), "with_category": 7}]}
    # the SQL-string form, in the strict shape scoped tokens may use
    doc = models.ok("aggregations", token, method=method,
                    params={"aggregations": 'sum(score) AS total, count(*) n, max("Mixed Case") as "Top"'})
    assert doc == {"rows": [{"total": 300, "n": 8, "Top": 800}]}


@METHODS
def test_pick(models, token, method):
    ids = dict(line.split("|") for line in warehouse(
        models.stack, "SELECT id, md5(ST_AsBinary(geom)) FROM public.mdl_items WHERE geom IS NOT NULL").splitlines())
    doc = models.ok("pick", token, method=method,
                    params={"columns": ["id", "name", "_carto_feature_id"], "dataType": "points",
                            "featureIds": [ids["3"], ids["1"], "0" * 32], "z": 5, "limit": 1000, "tileResolution": 0.5})
    assert doc == {"rows": [{"id": 3, "name": "gamma", "_carto_feature_id": ids["3"]},
                            {"id": 1, "name": "alpha", "_carto_feature_id": ids["1"]}],
                   "metadata": {"total": 2}}
    doc = models.ok("pick", token, method=method, params={"columns": ["id"], "featureIds": [ids["2"]]},
                    filters={"category": {"in": {"values": ["b"]}}})
    assert doc == {"rows": [], "metadata": {"total": 0}}
    # featureIds also restrict the other models
    doc = models.ok("formula", token, method=method, params={"column": "score", "operation": "sum",
                                                             "featureIds": [ids["4"], ids["5"]]})
    assert doc == {"rows": [{"value": 90}]}


# ---------------------------------------------------------------------------------------------
# filters, spatial filters, query sources


FILTER_CASES = [
    ({"category": {"in": {"values": ["a"]}}}, "and", 3),
    ({"category": {"in": {"values": ["a", "b"], "owner": "w1"}}}, "and", 5),
    ({"score": {"between": {"values": [[20, 40]]}}}, "and", 3),
    ({"score": {"closed_open": {"values": [[20, 40]]}}}, "and", 2),
    ({"score": {"between": {"values": [[50, None]]}}}, "and", 3),
    ({"ts": {"time": {"values": [[ms("2024-02-01T00:00:00Z"), ms("2024-03-01T00:00:00Z")]]}}}, "and", 2),
    # both bounds included (epsilon is at exactly 2024-03-05), as the client's local filterTime does
    ({"ts": {"time": {"values": [[ms("2024-02-01T00:00:00Z"), ms("2024-03-05T00:00:00Z")]]}}}, "and", 3),
    ({"name": {"stringSearch": {"values": ["ETA"]}}}, "and", 4),
    ({"name": {"stringSearch": {"values": ["eta"], "params": {"mustStart": True}}}}, "and", 1),
    ({"name": {"stringSearch": {"values": ["_%"]}}}, "and", 1),
    ({"name": {"stringSearch": {"values": ["ETA"], "params": {"caseSensitive": True}}}}, "and", 0),
    ({"category": {"in": {"values": ["c"]}}, "score": {"between": {"values": [[10, 10]]}}}, "or", 3),
    ({"category": {"in": {"values": ["c"]}}, "score": {"between": {"values": [[10, 10]]}}}, "and", 0),
    ({"active": {"in": {"values": [True]}}, "score": {"closed_open": {"values": [[None, 50]]}}}, "and", 3),
]


@METHODS
@pytest.mark.parametrize("filters,logical,expected", FILTER_CASES)
def test_filters(models, token, method, filters, logical, expected):
    doc = models.ok("formula", token, method=method, params={"operation": "count"}, filters=filters,
                    filtersLogicalOperator=logical)
    assert doc["rows"][0]["value"] == expected


@METHODS
def test_filters_apply_to_every_model(models, token, method):
    f = {"category": {"in": {"values": ["a"]}}}
    assert models.ok("range", token, method=method, params={"column": "score"}, filters=f)["rows"] == [{"min": 10, "max": 20}]
    assert models.ok("histogram", token, method=method, params={"column": "score", "ticks": [15]}, filters=f)["rows"] == [
        {"tick": 0, "value": 1}, {"tick": 1, "value": 1}]
    assert models.ok("category", token, method=method, params={"column": "active"}, filters=f)["rows"] == [
        {"name": True, "value": 2}, {"name": False, "value": 1}]
    assert len(models.ok("scatterplot", token, method=method, params={"xAxisColumn": "id", "yAxisColumn": "score"},
                         filters=f)["rows"]) == 2
    assert models.ok("aggregations", token, method=method, params={"aggregations": [
        {"column": "score", "operation": "sum", "alias": "s"}]}, filters=f)["rows"] == [{"s": 30}]


POLYGON = {"type": "Polygon", "coordinates": box(-1, -1, 3, 3)}
MULTI = {"type": "MultiPolygon", "coordinates": [box(-1, -1, 3, 3), box(9, 9, 12, 12)]}


@METHODS
def test_spatial_filters(models, token, method):
    def count(spatial, **kw):
        return models.ok("formula", token, method=method, params={"operation": "count"},
                         spatialFilters=spatial, **kw)["rows"][0]["value"]

    assert count({"geom": POLYGON}) == 3
    assert count({"geom": MULTI}) == 5
    assert count({"geom": POLYGON}, filters={"category": {"in": {"values": ["a"]}}}) == 2
    # spatial filters are ANDed even when the attribute filters are ORed
    assert count({"geom": POLYGON}, filters={"category": {"in": {"values": ["c"]}}, "id": {"in": {"values": [1]}}},
                 filtersLogicalOperator="or") == 1
    # a column in EPSG:3857: the WGS84 polygon is transformed to the column's SRID
    assert models.ok("formula", token, method=method, source=MERC, params={"operation": "count"},
                     spatialFilters={"geom": POLYGON})["rows"][0]["value"] == 2
    doc = models.ok("table", token, method=method, params={"column": ["id"], "sortBy": "id"},
                    spatialFilters={"geom": MULTI})
    assert doc == {"rows": [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}, {"id": 5}], "metadata": {"total": 5}}


@METHODS
def test_query_source(models, token, method):
    q = "SELECT id, name, category, score, geom FROM public.mdl_items WHERE score > $1"
    doc = models.ok("formula", token, method=method, type="query", source=q, queryParameters=["25"],
                    params={"column": "score", "operation": "sum"})
    assert doc == {"rows": [{"value": 270}]}
    doc = models.ok("category", token, method=method, type="query", source=q, queryParameters=["25"],
                    params={"column": "category"}, spatialFilters={"geom": MULTI})
    assert doc == {"rows": [{"name": "b", "value": 2}, {"name": "c", "value": 1}]}
    # a trailing comment or semicolon does not break the wrapping
    for q in ("SELECT * FROM public.mdl_items -- all of it", "SELECT * FROM public.mdl_items;\n"):
        assert models.ok("formula", token, method=method, type="query", source=q) == {"rows": [{"value": 8}]}


def test_get_and_post_agree(models, token):
    params = {"column": "category", "operation": "avg", "operationColumn": "score", "othersThreshold": 2}
    f = {"score": {"between": {"values": [[10, 75]]}}}
    assert models.ok("category", token, method="GET", params=params, filters=f) == \
        models.ok("category", token, method="POST", params=params, filters=f)


def test_cache_headers(models, token):
    r = models.call("formula", token, params={"operation": "count"})
    assert_ok(r)
    assert r.header("Cache-Control") == "private, max-age=1800"
    assert "Authorization" in (r.header("Vary") or "")
    r = models.api.get("/api/v3/sql/carto_dw/model/formula", token=token, headers={"Cache-Control": "no-cache"},
                       params={"type": "table", "source": TABLE, "params": {}})
    assert assert_ok(r) == {"rows": [{"value": 8}]}
    assert r.header("Cache-Control") == "no-cache"


# ---------------------------------------------------------------------------------------------
# validation


@METHODS
@pytest.mark.parametrize("model,params,extra,column", [
    ("formula", {"column": "nope", "operation": "sum"}, {}, "nope"),
    ("formula", {"column": "nope", "operation": "count"}, {}, "nope"),
    ("category", {"column": "nope"}, {}, "nope"),
    ("category", {"column": "category", "operation": "sum", "operationColumn": "nope"}, {}, "nope"),
    ("histogram", {"column": "nope", "ticks": [1]}, {}, "nope"),
    ("range", {"column": "Score"}, {}, "Score"),
    ("table", {"column": ["id", "nope"]}, {}, "nope"),
    ("table", {"column": ["id"], "sortBy": "nope"}, {}, "nope"),
    ("timeseries", {"column": "nope", "stepSize": "day"}, {}, "nope"),
    ("timeseries", {"column": "ts", "stepSize": "day", "splitByCategory": "nope"}, {}, "nope"),
    ("scatterplot", {"xAxisColumn": "id", "yAxisColumn": "nope"}, {}, "nope"),
    ("aggregations", {"aggregations": [{"column": "nope", "operation": "sum"}]}, {}, "nope"),
    ("pick", {"columns": ["id", "nope"]}, {}, "nope"),
    ("formula", {}, {"filters": {"nope": {"in": {"values": [1]}}}}, "nope"),
    ("formula", {}, {"spatialFilters": {"nope": POLYGON}}, "nope"),
    ("pick", {"columns": ["id"], "featureIds": ["x"]}, {"spatialDataColumn": "nope"}, "nope"),
])
def test_unknown_column(models, token, method, model, params, extra, column):
    doc = assert_error(models.call(model, token, method=method, params=params, **extra), 400, "column_not_found")
    assert doc["error"] == "Column not found"
    assert doc["column_name"] == column


@pytest.mark.parametrize("model,params,extra,message", [
    ("histogram", {"column": "score", "ticks": list(range(1001))}, {}, "more than 1000"),
    ("histogram", {"column": "score", "ticks": [5, 1]}, {}, "ascending"),
    ("histogram", {"column": "score", "ticks": [1, "x"]}, {}, "ticks"),
    ("histogram", {"column": "name", "ticks": [1]}, {}, "numeric"),
    ("histogram", {"column": "score"}, {}, "ticks"),
    ("formula", {"column": "name", "operation": "avg"}, {}, "numeric"),
    ("formula", {"column": "score", "operation": "median"}, {}, "operation"),
    ("formula", {"column": "*", "operation": "sum"}, {}, "column"),
    ("category", {"column": "category", "orderBy": "random"}, {}, "orderBy"),
    ("category", {"column": "geom"}, {}, "plain values"),
    ("category", {"column": "category", "othersThreshold": -1}, {}, "othersThreshold"),
    ("range", {"column": "name"}, {}, "numeric"),
    ("range", {}, {}, "params.column"),
    ("table", {"column": ["id"], "offset": -1}, {}, "offset"),
    ("table", {"column": ["id"], "limit": "ten"}, {}, "limit"),
    ("table", {"column": ["id"], "sortBy": "id", "sortDirection": "sideways"}, {}, "sortDirection"),
    ("table", {"column": 5}, {}, "column"),
    ("timeseries", {"column": "ts", "stepSize": "fortnight"}, {}, "stepSize"),
    ("timeseries", {"column": "ts"}, {}, "stepSize"),
    ("timeseries", {"column": "name", "stepSize": "day"}, {}, "timeseries"),
    ("timeseries", {"column": "ts", "stepSize": "day", "stepMultiplier": 0}, {}, "stepMultiplier"),
    ("timeseries", {"column": "ts", "stepSize": "second", "stepMultiplier": 1}, {"filters": {}}, None),
    ("scatterplot", {"xAxisColumn": "name", "yAxisColumn": "id"}, {}, "numeric"),
    ("aggregations", {"aggregations": []}, {}, "aggregations"),
    ("aggregations", {"aggregations": [{"column": "*", "operation": "sum"}]}, {}, "count"),
    ("pick", {"columns": ["id"], "dataType": "blobs"}, {}, "dataType"),
    ("pick", {"columns": ["id"], "tileResolution": 3}, {}, "tileResolution"),
    ("pick", {"columns": ["id"], "featureIds": [str(i) for i in range(1001)]}, {}, "featureIds"),
    ("formula", {}, {"spatialFilters": {"geom": {"type": "Point", "coordinates": [0, 0]}}}, "Polygon"),
    ("formula", {}, {"spatialFilters": {"geom": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 1]]]}}}, "4 positions"),
    ("formula", {}, {"spatialFilters": {"geom": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 2]]]}}}, "closed"),
    # (A viewport on an h3 source's point column filters the points; h3 cells are in test_maps_h3.)
    ("formula", {}, {"spatialFilters": {"geom": {"type": "h3", "indexes": ["zz"]}}, "spatialDataType": "h3"}, "H3"),
    ("formula", {}, {"spatialFilters": {"name": POLYGON}}, "geometry"),
    ("formula", {}, {"filters": {"score": {"between": {"values": [1, 2]}}}}, "pairs"),
    ("formula", {}, {"filters": {"score": {"regex": {"values": ["x"]}}}}, "filter type"),
    ("formula", {}, {"filtersLogicalOperator": "xor"}, "filtersLogicalOperator"),
    ("formula", {}, {"type": "tileset"}, "tileset"),
    ("formula", {}, {"type": "nope"}, "type"),
    ("formula", {}, {"source": ""}, "source"),
])
def test_bad_input(models, token, model, params, extra, message):
    r = models.call(model, token, method="POST", params=params, **extra)
    if message is None:
        assert_ok(r)
        return
    doc = assert_error(r, 400)
    assert message in doc["error"], doc


def test_bad_input_get_forms(models, token):
    path = "/api/v3/sql/carto_dw/model/formula"
    doc = assert_error(models.api.get(path, token=token, params={"source": TABLE}), 400, "missing_parameter")
    assert "type" in doc["error"]
    r = models.api.get(path + "?type=table&source=public.mdl_items&params=%7Bbad", token=token)
    assert_error(r, 400, "invalid_parameter")
    r = models.api.get(path + "?type=table&source=public.mdl_items&params=%5B1%5D", token=token)
    assert_error(r, 400, "invalid_parameter")
    r = models.api.get(path + "?type=table&source=public.mdl_items&filters=%7Bbad", token=token)
    assert_error(r, 400, "invalid_parameter")
    assert_error(models.call("nope", token), 404, "model_not_found")
    assert models.api.request("DELETE", path, token=token).status == 405


def test_limits_are_capped(models, token):
    doc = models.ok("table", token, params={"column": ["id"], "limit": 50_000})
    assert len(doc["rows"]) == 8
    doc = models.ok("scatterplot", token, params={"xAxisColumn": "id", "yAxisColumn": "score", "limit": 10**9})
    assert len(doc["rows"]) == 7
    doc = models.ok("histogram", token, params={"column": "score", "ticks": list(range(1000))})
    assert sum(r["value"] for r in doc["rows"]) == 7


def test_unknown_source_and_connection(models, token):
    assert_error(models.call("formula", token, source="public.mdl_missing"), 404)
    r = models.call("formula", token, conn="no_such_connection")
    assert r.status in (403, 404), r
    assert_error(models.call("formula", token, type="query", source="SELECT FROM WHERE"), 400)


# ---------------------------------------------------------------------------------------------
# injection


def tables_intact(stack) -> bool:
    return warehouse(stack, "SELECT (SELECT count(*) FROM public.mdl_items) || ',' || (SELECT count(*) FROM public.mdl_other)") == "8,1"


INJECTED = ['score"; DROP TABLE public.mdl_other; --', "score) FROM public.mdl_other; --", 'name" FROM public.mdl_other --',
            "1; SELECT pg_sleep(5)", "*"]


@pytest.mark.parametrize("column", INJECTED)
def test_injection_in_column_names(models, token, column):
    cases = [
        ("formula", {"column": column, "operation": "sum"}, {}),
        ("category", {"column": column}, {}),
        ("category", {"column": "category", "operation": "max", "operationColumn": column}, {}),
        ("histogram", {"column": column, "ticks": [1]}, {}),
        ("range", {"column": column}, {}),
        ("table", {"column": ["id", column]}, {}),
        ("table", {"column": ["id"], "sortBy": column}, {}),
        ("timeseries", {"column": column, "stepSize": "day"}, {}),
        ("scatterplot", {"xAxisColumn": column, "yAxisColumn": "id"}, {}),
        ("aggregations", {"aggregations": [{"column": column, "operation": "max"}]}, {}),
        ("pick", {"columns": [column]}, {}),
        ("formula", {}, {"filters": {column: {"in": {"values": ["a"]}}}}),
        ("formula", {}, {"spatialFilters": {column: POLYGON}}),
    ]
    for model, params, extra in cases:
        r = models.call(model, token, method="POST", params=params, **extra)
        assert r.status == 400, (model, params, extra, r)
        doc = r.json()
        assert doc["code"] in ("column_not_found", "invalid_parameter", "invalid_filter"), (model, doc)
    assert tables_intact(models.stack)


def test_injection_in_values(models, token):
    def count(filters):
        return models.ok("formula", token, params={"operation": "count"}, filters=filters)["rows"][0]["value"]

    assert count({"category": {"in": {"values": ["a' OR '1'='1"]}}}) == 0
    assert count({"name": {"stringSearch": {"values": ["' OR 1=1 --"]}}}) == 0
    assert count({"name": {"stringSearch": {"values": [".*"], "params": {"useRegExp": True}}}}) == 8
    assert_error(models.call("formula", token, params={"operation": "count"},
                             filters={"ts": {"time": {"values": [["2024-01-01'); DROP TABLE x; --", None]]}}}), 400)
    # aliases and split values are bound values, not identifiers
    alias = 'x", (SELECT secret FROM public.mdl_other) AS "y'
    doc = models.ok("aggregations", token, params={"aggregations": [{"column": "*", "operation": "count", "alias": alias}]})
    assert doc == {"rows": [{alias: 8}]}
    doc = models.ok("timeseries", token, params={"column": "ts", "stepSize": "year", "splitByCategory": "category",
                                                 "splitByCategoryValues": ["a') OR (1=1"]})
    assert doc == {"rows": [], "metadata": {"categories": ["a') OR (1=1"]}}
    # table names are quoted identifiers; query parameters are bound
    r = models.call("formula", token, source="public.mdl_items; DROP TABLE public.mdl_other")
    assert r.status in (400, 404), r
    r = models.call("formula", token, type="query", source="SELECT * FROM public.mdl_items WHERE id = $1",
                    queryParameters=["1; DROP TABLE public.mdl_other"])
    assert_error(r, 400)
    # operations and step sizes are keywords from a fixed list
    assert_error(models.call("formula", token, params={"column": "score", "operation": "sum(score)); DROP TABLE x; --"}), 400)
    assert_error(models.call("timeseries", token, params={"column": "ts", "stepSize": "day'); --"}), 400)
    assert tables_intact(models.stack)


def test_read_only(models, admin):
    # Even a user's own SQL (allowed verbatim) runs in a read-only transaction that is rolled back.
    r = models.call("formula", admin.token, type="query", params={"operation": "count"},
                    source="SELECT *, nextval('public.mdl_seq') AS n FROM public.mdl_items")
    assert_error(r, 403, "read_only")
    r = models.call("aggregations", admin.token, params={"aggregations": "count(*) AS n, max(nextval('public.mdl_seq')) AS s"})
    assert_error(r, 403, "read_only")
    assert warehouse(models.stack, "SELECT last_value || ':' || is_called FROM public.mdl_seq") == "1:false"
    assert tables_intact(models.stack)


# ---------------------------------------------------------------------------------------------
# authorization


def test_requires_a_token(models):
    assert_error(models.call("formula", None), 401)
    assert_error(models.call("formula", "not-a-token"), 401)


def test_grant_matrix(models, scoped_token, maps_only_token, token):
    assert models.ok("formula", scoped_token, params={"operation": "count"}) == {"rows": [{"value": 8}]}
    assert models.ok("formula", scoped_token, source="mdl_items", params={"operation": "count"}) == {"rows": [{"value": 8}]}
    for model, params in [("formula", {"operation": "count"}), ("table", {"column": ["secret"]}),
                          ("category", {"column": "secret"}), ("pick", {"columns": ["secret"]})]:
        for method in ("GET", "POST"):
            assert_error(models.call(model, scoped_token, method=method, source=OTHER, params=params), 403, "source_not_granted")
    # a table grant does not cover SQL sources, even over the granted table
    assert_error(models.call("formula", scoped_token, type="query", source=QUERY), 403, "source_not_granted")
    assert_error(models.call("formula", scoped_token, type="query", source="SELECT * FROM public.mdl_other"), 403)
    # the model API is the SQL API: a maps-only token is refused
    doc = assert_error(models.call("formula", maps_only_token, params={"operation": "count"}), 403, "api_not_allowed")
    assert "sql" in doc["error"]


def test_query_grant(models, make_token):
    granted = make_token([(CONN, QUERY)], allowed_apis=["sql"])["token"]
    assert models.ok("formula", granted, type="query", source=QUERY, params={"operation": "count"}) == {"rows": [{"value": 8}]}
    # Outer whitespace and a trailing semicolon aside, the text must match exactly (issue 11, case 6).
    assert models.ok("formula", granted, type="query", source="  " + QUERY + " ;",
                     params={"operation": "count"}) == {"rows": [{"value": 8}]}
    assert_error(models.call("formula", granted, type="query", source=QUERY.replace(" FROM", "   FROM")), 403)
    assert_error(models.call("formula", granted, type="query", source=QUERY + " WHERE id > 1"), 403)
    assert_error(models.call("formula", granted, source=TABLE), 403)


def test_custom_sql_only_for_users(models, token, scoped_token, admin):
    custom = {"column": "score", "operation": "custom", "operationExp": "sum(score) * 2"}
    for t in (token, scoped_token):
        # API access tokens (public apps, fetchMap's map token) may send operationExp within the scoped-SQL
        # function allow-list: the same values as a user gets.
        assert models.ok("formula", t, method="POST", params=custom) == {"rows": [{"value": 600}]}
        assert models.ok("formula", t, params={**custom, "operationExp": "round(avg(score)::numeric, 1) + count(*) FILTER (WHERE active)"}) == {
            "rows": [{"value": 47.9}]}
        assert models.ok("category", t, params={**custom, "column": "category", "othersThreshold": 1}) == {
            "rows": [{"name": "c", "value": 260}], "metadata": {"others": 340}}
        for exp, why in [("(SELECT max(secret) FROM public.mdl_other)", "subqueries"),
                         ("sum(score) + (TABLE public.mdl_other)", "subqueries"),
                         ("sum(score) + (WITH x AS (SELECT 1) SELECT 1)", "subqueries"),
                         ("sum(score) + pg_catalog.pg_sleep(1)::text::int", "pg_catalog.pg_sleep"),
                         ("length(query_to_xml('SELECT * FROM public.mdl_other', true, false, '')::text)", "query_to_xml"),
                         ("sum(score)) FROM public.mdl_other --", "comments"),
                         ("sum(score); DROP TABLE public.mdl_other", "';'"),
                         ("length($$x$$)", "dollar"),
                         ("count(*) + 'x", "quote")]:
            err = assert_error(models.call("formula", t, method="POST", params={**custom, "operationExp": exp}), 403,
                               "custom_operation_forbidden")
            assert why in err["error"], (exp, err)
        # The aggregations model's SQL-string form stays strict for tokens.
        for model, params in [("aggregations", {"aggregations": "sum(score * 2) AS x"}),
                              ("aggregations", {"aggregations": "sum(score) AS x, (SELECT 1) AS y"}),
                              ("aggregations", {"aggregations": "max(secret) FROM public.mdl_other --"})]:
            assert_error(models.call(model, t, method="POST", params=params), 403)
    # users (OAuth tokens) may use them
    assert models.ok("formula", admin.token, params=custom) == {"rows": [{"value": 600}]}
    assert models.ok("formula", admin.token, params={**custom, "operationExp": "sum(score) * 2 -- doubled"}) == {
        "rows": [{"value": 600}]}
    assert models.ok("category", admin.token, params={**custom, "column": "category", "othersThreshold": 1}) == {
        "rows": [{"name": "c", "value": 260}], "metadata": {"others": 340}}
    assert models.ok("timeseries", admin.token, params={**custom, "column": "ts", "stepSize": "year"})["rows"] == [
        {"name": ms("2024-01-01T00:00:00Z"), "value": 300}, {"name": ms("2025-01-01T00:00:00Z"), "value": 140}]
    assert models.ok("aggregations", admin.token, params={"aggregations": "sum(score * 2) AS x, count(*) AS n"}) == {
        "rows": [{"x": 600, "n": 8}]}
    r = models.call("formula", admin.token, params={"operation": "custom"})
    assert "operationExp" in assert_error(r, 400)["error"]
    assert tables_intact(models.stack)


def test_user_token_sees_everything(models, admin):
    assert models.ok("formula", admin.token, source=OTHER, params={"operation": "count"}) == {"rows": [{"value": 1}]}
    doc = models.ok("timeseries", admin.token, params={"column": "ts", "stepSize": "month"},
                    spatialFilters={"geom": POLYGON})
    assert doc["rows"] == [{"name": ms("2024-01-01T00:00:00Z"), "value": 2}, {"name": ms("2024-02-01T00:00:00Z"), "value": 1}]


def test_numbers_are_json_numbers(models, token):
    doc = models.ok("formula", token, params={"column": "score", "operation": "avg"})
    assert isinstance(doc["rows"][0]["value"], float) and math.isclose(doc["rows"][0]["value"], 300 / 7)
    # geometries as EWKB hex, as the SQL API returns them
    doc = models.ok("table", token, params={"column": ["id", "geom"], "sortBy": "id", "limit": 2, "offset": 1})
    assert doc["rows"] == [{"id": 2, "geom": "0101000020E6100000000000000000F03F000000000000F03F"},
                           {"id": 3, "geom": "0101000020E610000000000000000000400000000000000040"}]
