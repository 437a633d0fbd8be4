"""SQL API v3 contract (carto-v3-api.md §4.1, §1.3, §1.6): `{schema, rows, meta}` field by field,
GET and POST forms, queryParameters, output formats, streaming and session isolation."""

from __future__ import annotations

import csv
import datetime as dt
import http.client
import io
import json
import struct
import time

import pytest

from helpers import SQL_PATH, assert_error, assert_ok, encode_query, kib, proc_status, unique, wait_until

TYPES_SQL = """
SELECT 1::integer AS int_col, 9007199254740993::bigint AS big_col, 2::smallint AS small_col,
       1.5::float8 AS float_col, 2.5::real AS real_col, 1.25::numeric AS numeric_col,
       'it''s "text"'::text AS text_col, 'v'::varchar AS varchar_col,
       true AS bool_col, false AS bool_false,
       '2024-01-02'::date AS date_col,
       '2024-01-02T03:04:05.123Z'::timestamptz AS tstz_col,
       '2024-01-02 03:04:05'::timestamp AS ts_col,
       '{"k": [1, "two", null], "n": {"x": true}}'::jsonb AS jsonb_col,
       '[1, 2]'::json AS json_col,
       ST_SetSRID(ST_MakePoint(1.5, -2.25), 4326) AS geom_col,
       NULL::integer AS null_int, NULL::text AS null_text, NULL::geometry AS null_geom,
       'NaN'::float8 AS nan_col
"""

EXPECTED_SCHEMA = [
    ("int_col", "number"), ("big_col", "number"), ("small_col", "number"),
    ("float_col", "number"), ("real_col", "number"), ("numeric_col", "number"),
    ("text_col", "string"), ("varchar_col", "string"),
    ("bool_col", "boolean"), ("bool_false", "boolean"),
    ("date_col", "date"), ("tstz_col", "timestamp"), ("ts_col", "timestamp"),
    ("jsonb_col", "object"), ("json_col", "object"),
    ("geom_col", "geometry"),
    ("null_int", "number"), ("null_text", "string"), ("null_geom", "geometry"),
    ("nan_col", "number"),
]

META_KEYS = {"cacheHit", "location", "totalBytesProcessed", "rowCount", "command", "executionTimeMs"}


def parse_ewkb_point(hexstr: str) -> tuple[int | None, float, float]:
    raw = bytes.fromhex(hexstr)
    order = "<" if raw[0] == 1 else ">"
    (wkb_type,) = struct.unpack(order + "I", raw[1:5])
    offset, srid = 5, None
    if wkb_type & 0x20000000:
        (srid,) = struct.unpack(order + "I", raw[5:9])
        offset = 9
    assert wkb_type & 0xFF == 1, f"not a point: {wkb_type:#x}"
    x, y = struct.unpack(order + "dd", raw[offset:offset + 16])
    return srid, x, y


def check_types_response(doc: dict) -> None:
    assert set(doc) == {"schema", "rows", "meta"}, doc.keys()
    assert [(c["name"], c["type"]) for c in doc["schema"]] == EXPECTED_SCHEMA
    assert all(set(c) == {"name", "type"} for c in doc["schema"])
    assert len(doc["rows"]) == 1
    row = doc["rows"][0]
    assert list(row) == [name for name, _ in EXPECTED_SCHEMA], "row keys follow the column order"
    assert row["int_col"] == 1 and isinstance(row["int_col"], int)
    assert row["big_col"] == 9007199254740993, "bigint sent as an exact JSON number"
    assert row["small_col"] == 2
    assert row["float_col"] == 1.5 and row["real_col"] == 2.5
    assert row["numeric_col"] == 1.25
    assert row["text_col"] == 'it\'s "text"' and row["varchar_col"] == "v"
    assert row["bool_col"] is True and row["bool_false"] is False
    assert row["date_col"] == "2024-01-02"
    tstz = dt.datetime.fromisoformat(row["tstz_col"])
    assert tstz.tzinfo is not None
    assert tstz == dt.datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=dt.timezone.utc)
    assert dt.datetime.fromisoformat(row["ts_col"]) == dt.datetime(2024, 1, 2, 3, 4, 5)
    assert row["jsonb_col"] == {"k": [1, "two", None], "n": {"x": True}}, "json(b) is embedded, not a string"
    assert row["json_col"] == [1, 2]
    assert isinstance(row["geom_col"], str)
    assert parse_ewkb_point(row["geom_col"]) == (4326, 1.5, -2.25)
    assert row["null_int"] is None and row["null_text"] is None and row["null_geom"] is None
    assert row["nan_col"] is None, "NaN has no JSON form"
    meta = doc["meta"]
    assert META_KEYS <= set(meta), meta
    assert meta["cacheHit"] is False
    assert isinstance(meta["location"], str)
    assert isinstance(meta["totalBytesProcessed"], str) and meta["totalBytesProcessed"].isdigit()
    assert meta["rowCount"] == 1
    assert meta["command"] == "SELECT"
    assert isinstance(meta["executionTimeMs"], (int, float)) and meta["executionTimeMs"] >= 0
    assert "truncated" not in meta


def test_json_contract_get(api, full_token):
    r = api.sql(TYPES_SQL, full_token)
    doc = assert_ok(r)
    assert r.header("Content-Type").startswith("application/json")
    check_types_response(doc)
    # GET results are cacheable privately; tokens scope data, so the cache key varies on them.
    cc = r.header("Cache-Control")
    assert cc.startswith("private") and "max-age=" in cc, cc
    vary = {v.strip().lower() for line in r.all("Vary") for v in line.split(",")}
    assert {"authorization", "origin"} <= vary


def test_json_contract_post(api, full_token):
    r = api.sql(TYPES_SQL, full_token, method="POST")
    doc = assert_ok(r)
    check_types_response(doc)
    assert r.header("Cache-Control") == "no-store"


def test_get_and_post_agree(api, full_token, dw):
    q = "SELECT cartodb_id, name, population, geom FROM e2e_places ORDER BY cartodb_id"
    g = assert_ok(api.sql(q, full_token))
    p = assert_ok(api.sql(q, full_token, method="POST"))
    assert g["schema"] == p["schema"] and g["rows"] == p["rows"]
    assert [r["name"] for r in g["rows"]] == ["Alpha", 'Beta, "the second"', "Gamma", "Delta"]
    assert g["rows"][3]["population"] is None
    assert g["meta"]["rowCount"] == 4


def test_client_cache_control_lowers_max_age(api, full_token):
    r = api.sql("SELECT 1 AS a", full_token, headers={"Cache-Control": "max-age=30"})
    assert_ok(r)
    assert r.header("Cache-Control") == "private, max-age=30"
    r = api.sql("SELECT 1 AS a", full_token, headers={"Cache-Control": "max-age=1"})
    assert r.header("Cache-Control") == "private, max-age=10", "minimum 10 s (§1.6)"


def test_empty_result_keeps_schema(api, full_token, dw):
    doc = assert_ok(api.sql("SELECT cartodb_id, name FROM e2e_places WHERE false", full_token))
    assert doc["rows"] == []
    assert [(c["name"], c["type"]) for c in doc["schema"]] == [("cartodb_id", "number"), ("name", "string")]
    assert doc["meta"]["rowCount"] == 0


def test_query_parameters_get_json_string(api, full_token):
    q = "SELECT $1::int + 1 AS n, $2::text AS s, $3::boolean AS b, $4::text IS NULL AS isnull, $5::numeric AS d"
    values = [41, "O'Reilly \"quoted\"", True, None, 2.5]
    r = api.sql(q, full_token, query_parameters=values)  # JSON-stringified into the query string
    doc = assert_ok(r)
    assert doc["rows"] == [{"n": 42, "s": "O'Reilly \"quoted\"", "b": True, "isnull": True, "d": 2.5}]


def test_query_parameters_post_json_array(api, full_token):
    q = "SELECT $1::int + 1 AS n, $2::text AS s"
    doc = assert_ok(api.sql(q, full_token, method="POST", query_parameters=[41, "x"]))
    assert doc["rows"] == [{"n": 42, "s": "x"}]
    # A JSON *string* in a POST body (some clients stringify anyway) is accepted too.
    doc = assert_ok(api.sql(q, full_token, method="POST", query_parameters=json.dumps([1, "y"])))
    assert doc["rows"] == [{"n": 2, "s": "y"}]


def test_post_ignores_client_extras(api, full_token):
    extra = {"v": "3.4", "client": "deck-gl-carto", "deckglVersion": "9.0.0", "tag-mapId": "abc"}
    doc = assert_ok(api.sql("SELECT 7 AS seven", full_token, method="POST", extra=extra))
    assert doc["rows"] == [{"seven": 7}]
    doc = assert_ok(api.sql("SELECT 7 AS seven", full_token, extra=extra))
    assert doc["rows"] == [{"seven": 7}]


def test_post_keeps_base_url_query(api, full_token):
    # api-client keeps the base URL's own query string (e.g. client=) when it switches to POST.
    r = api.post(SQL_PATH.format(conn="carto_dw") + "?client=carto-for-react", json_body={"q": "SELECT 1 AS one"},
                 token=full_token)
    assert assert_ok(r)["rows"] == [{"one": 1}]


def test_post_form_urlencoded(api, full_token):
    r = api.post(SQL_PATH.format(conn="carto_dw"), data=encode_query({"q": "SELECT 3 AS three"}),
                 headers={"Content-Type": "application/x-www-form-urlencoded"}, token=full_token)
    assert assert_ok(r)["rows"] == [{"three": 3}]


CSV_SQL = """
SELECT * FROM (VALUES
    (1, 'a,b', 'say "hi"', E'line1\\nline2', NULL::text, 'plain'),
    (2, 'x', '', E'cr\\rhere', 'y', 'ünïcødé')
) AS t(id, comma, quote, newline, empty, utf8)
"""


def test_csv_rfc4180(api, full_token):
    r = api.sql(CSV_SQL, full_token, fmt="csv")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/csv")
    assert r.header("Access-Control-Allow-Origin") == "*"
    raw = r.body
    assert raw.startswith(b"id,comma,quote,newline,empty,utf8\r\n")
    assert b'1,"a,b","say ""hi""","line1\nline2",,plain\r\n' in raw
    assert raw.endswith(b'2,x,,"cr\rhere",y,\xc3\xbcn\xc3\xafc\xc3\xb8d\xc3\xa9\r\n')
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert rows == [["id", "comma", "quote", "newline", "empty", "utf8"],
                    ["1", "a,b", 'say "hi"', "line1\nline2", "", "plain"],
                    ["2", "x", "", "cr\rhere", "y", "ünïcødé"]]


def test_csv_header_only_for_empty_result(api, full_token):
    r = api.sql("SELECT 1 AS a, 2 AS b WHERE false", full_token, fmt="csv")
    assert r.status == 200 and r.body == b"a,b\r\n"


def test_ndjson(api, full_token, dw):
    r = api.sql("SELECT cartodb_id, name, population FROM e2e_places ORDER BY 1", full_token, fmt="ndjson")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/x-ndjson")
    lines = r.body.split(b"\n")
    assert lines[-1] == b"", "every record ends with a newline"
    records = [json.loads(line) for line in lines[:-1]]
    assert records == [
        {"cartodb_id": 1, "name": "Alpha", "population": 100},
        {"cartodb_id": 2, "name": 'Beta, "the second"', "population": 200},
        {"cartodb_id": 3, "name": "Gamma", "population": 300},
        {"cartodb_id": 4, "name": "Delta", "population": None},
    ]


def check_geojson(doc: dict) -> None:
    """RFC 7946 FeatureCollection (structure; coordinates only for the types used here)."""
    assert doc["type"] == "FeatureCollection"
    assert isinstance(doc["features"], list)
    for f in doc["features"]:
        assert f["type"] == "Feature"
        assert "properties" in f and (f["properties"] is None or isinstance(f["properties"], dict))
        g = f["geometry"]
        assert g is None or (isinstance(g, dict) and g.get("type") in
                             {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                              "GeometryCollection"}), f"invalid geometry member: {g!r}"
        if g is not None and g["type"] != "GeometryCollection":
            assert isinstance(g["coordinates"], list)


def test_geojson_feature_collection(api, full_token, dw):
    r = api.sql("SELECT cartodb_id, name, geom FROM e2e_places WHERE geom IS NOT NULL ORDER BY 1", full_token,
                fmt="geojson")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/geo+json")
    doc = r.json()
    check_geojson(doc)
    assert len(doc["features"]) == 4
    first = doc["features"][0]
    assert first["geometry"] == {"type": "Point", "coordinates": [1, 2]}
    assert first["properties"] == {"cartodb_id": 1, "name": "Alpha"}
    assert doc["features"][1]["geometry"]["coordinates"] == [3.5, -4.25]


def test_geojson_empty(api, full_token, dw):
    r = api.sql("SELECT cartodb_id, geom FROM e2e_places WHERE false", full_token, fmt="geojson")
    assert r.status == 200 and r.json() == {"type": "FeatureCollection", "features": []}


def test_geojson_null_geometry_is_valid(api, full_token):
    q = "SELECT 1 AS id, NULL::geometry AS geom UNION ALL SELECT 2, ST_SetSRID(ST_MakePoint(1, 1), 4326)"
    r = api.sql(q, full_token, fmt="geojson")
    assert r.status == 200, r
    doc = r.json()
    check_geojson(doc)
    assert doc["features"][0]["geometry"] is None


def test_format_is_validated(api, full_token):
    assert_error(api.sql("SELECT 1", full_token, fmt="xml"), 400, "invalid_parameter")


def test_million_rows_csv_streams(api, stack, full_token):
    """1,000,000 rows as CSV: complete, and the maps-api's memory stays flat (streamed, not built up)."""
    pid = stack.pid("maps-api")
    q = "SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 1000000) AS g"
    path = SQL_PATH.format(conn="carto_dw") + "?" + encode_query({"q": q, "format": "csv"})
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=120)
    lines, size, tail, peak_rss = 0, 0, b"", 0
    started = time.monotonic()
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {full_token}"})
        r = conn.getresponse()
        assert r.status == 200
        assert r.getheader("Content-Length") is None, "a large result is streamed, not buffered"
        while True:
            chunk = r.read(1 << 16)
            if not chunk:
                break
            lines += chunk.count(b"\n")
            size += len(chunk)
            tail = (tail + chunk)[-200:]
            if lines % 50 == 0:
                peak_rss = max(peak_rss, kib(proc_status(pid)["VmRSS"]))
    finally:
        conn.close()
    elapsed = time.monotonic() - started
    assert lines == 1_000_001, "header + one line per row"
    assert tail.endswith(b"1000000,8155bc545f84d9652f1012ef2bdfb6eb\r\n")
    assert size > 38_000_000
    hwm = kib(proc_status(pid)["VmHWM"])
    assert max(peak_rss, hwm) < 200 * 1024, f"maps-api RSS peaked at {max(peak_rss, hwm) // 1024} MB"
    assert elapsed < 60


def test_multiple_statements_refused(api, full_token, dw):
    before = dw.fingerprint()
    for q in ("SELECT 1; SELECT 2", "SELECT 1; DROP TABLE e2e_secret", "SELECT 1;;SELECT 2"):
        assert_error(api.sql(q, full_token), 400)
        assert_error(api.sql(q, full_token, method="POST"), 400)
    assert dw.fingerprint() == before
    # One statement with a trailing semicolon is fine.
    assert assert_ok(api.sql("SELECT 1 AS a;", full_token))["rows"] == [{"a": 1}]


def test_unknown_connection(api, full_token, admin):
    assert_error(api.sql("SELECT 1", admin.token, conn="no_such_connection"), 404, "connection_not_found")
    # An API token without a grant on the connection learns nothing more than "not granted" / "not found".
    r = api.sql("SELECT 1", full_token, conn="no_such_connection")
    assert r.status in (403, 404)
    assert_error(r, r.status)


def test_sql_error_mapping(api, full_token):
    doc = assert_error(api.sql("SELEC 1", full_token), 400, "invalid_query")
    assert "syntax" in doc["error"]
    assert_error(api.sql("SELECT * FROM no_such_table_xyz", full_token), 404, "relation_not_found")
    assert_error(api.sql("SELECT no_such_column FROM e2e_places", full_token), 400, "column_not_found")
    assert_error(api.sql("SELECT 1/0", full_token), 400, "invalid_data")


def test_get_error_is_not_cacheable(api, full_token):
    r = api.sql("SELECT * FROM no_such_table_xyz", full_token)
    assert r.status == 404
    assert r.all("Cache-Control") == ["no-store"], r.all("Cache-Control")


def test_user_token_can_write_and_session_state_is_reset(api, admin, dw):
    """A user (OAuth) token may write; SET/temp tables never outlive the request (DISCARD ALL)."""
    table = unique("e2e_tmp")
    doc = assert_ok(api.sql(f"CREATE TABLE {table} (id int)", admin.token, method="POST"))
    assert doc["rows"] == [] and doc["meta"]["command"] == "CREATE"
    doc = assert_ok(api.sql(f"INSERT INTO {table} VALUES ($1), ($2)", admin.token, method="POST",
                            query_parameters=[1, 2]))
    assert doc["meta"]["command"] == "INSERT"
    assert dw.sql(f"SELECT count(*) FROM {table}") == "2"
    assert_ok(api.sql(f"DROP TABLE {table}", admin.token, method="POST"))

    assert_ok(api.sql("SET search_path TO e2e_s", admin.token, method="POST"))
    doc = assert_ok(api.sql("SELECT current_setting('search_path') AS p", admin.token, method="POST"))
    assert "e2e_s" not in doc["rows"][0]["p"]
    assert_ok(api.sql("CREATE TEMP TABLE e2e_leak (x int)", admin.token, method="POST"))
    assert_error(api.sql("SELECT * FROM e2e_leak", admin.token, method="POST"), 404, "relation_not_found")


@pytest.mark.parametrize("path", [SQL_PATH.format(conn="carto_dw"), "/api/v3/tokens", "/api/v3/connections/x/test",
                                  "/api/v3/me", "/api/oauth/token", "/api/v3/no-such-route"])
def test_cors_preflight(api, path):
    r = api.request("OPTIONS", path,
                    headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET",
                             "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status == 204
    assert r.header("Access-Control-Allow-Origin") == "*"
    allowed = {h.strip().lower() for h in r.header("Access-Control-Allow-Headers").split(",")}
    assert {"authorization", "content-type", "accept", "cache-control", "if-modified-since"} <= allowed
    methods = {m.strip() for m in r.header("Access-Control-Allow-Methods").split(",")}
    assert {"GET", "POST", "PATCH", "DELETE"} <= methods
    assert int(r.header("Access-Control-Max-Age")) > 0


def reset_warehouse_sessions(stack):
    """Drops the APIs' idle warehouse connections (the pools replace them at checkout)."""
    pids = stack.psql("SELECT string_agg(pid::text, ',') FROM (SELECT pid, pg_terminate_backend(pid) "
                      "FROM pg_stat_activity WHERE datname = 'carto_dw' AND application_name = 'tessera' "
                      "AND state IN ('idle', 'idle in transaction')) t")
    if pids:
        # Gone on the server, so their hang-up is visible to the pools' checkout check.
        wait_until(lambda: stack.psql(f"SELECT count(*) FROM pg_stat_activity WHERE pid IN ({pids})") == "0",
                   timeout=10)


def test_set_config_does_not_leak_into_later_requests(api, admin, full_token, stack, dw):
    """Session settings changed through a SELECT (set_config) must not reach the next request on the same
    pooled connection: the next caller (maybe a public app's token) would resolve names differently."""
    try:
        for _ in range(3):  # the pool is LIFO: the following requests get the same connections
            assert_ok(api.sql("SELECT set_config('search_path', 'e2e_s', false) AS s", admin.token, method="POST"))
        for _ in range(3):
            doc = assert_ok(api.sql("SELECT current_setting('search_path') AS p", full_token, method="POST"))
            assert "e2e_s" not in doc["rows"][0]["p"], "search_path leaked from a previous request"
            assert_error(api.sql("SELECT a FROM t1", full_token, method="POST"), 404, "relation_not_found")
    finally:
        reset_warehouse_sessions(stack)


def test_session_advisory_lock_does_not_outlive_the_request(api, admin, stack):
    key = 515151
    try:
        assert_ok(api.sql(f"SELECT pg_advisory_lock({key}) AS l", admin.token, method="POST"))
        # The pool resets the session after the response is sent (off the client's critical path).
        wait_until(lambda: stack.psql(f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {key}",
                                      dbname="carto_dw") == "0", timeout=10)
    finally:
        stack.psql(f"SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = {key}",
                   dbname="carto_dw")
