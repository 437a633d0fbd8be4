"""Table and column names end to end (issue 12, "SQL as a value"): one qualified-name parser and one
identifier-quoting function serve every API, so a name PostgreSQL accepts works everywhere (quoted parts
keep case, dots and quotes; unquoted parts fold; `db.schema.table` is accepted) and a malformed one is a
400 that names the parameter it came from.

Fixture: schema `E2E Names` holding table `Odd.Table "q"` with columns `We"ird Col` (int) and 名前 (text).
"""

from __future__ import annotations

import urllib.parse

import pytest

import helpers as h
import mvt
from helpers import assert_error, assert_ok

CONN = "carto_dw"
MAPS = f"/api/v3/maps/{CONN}"
NAME = '"E2E Names"."Odd.Table ""q"""'
WEIRD = 'We"ird Col'
ROWS = [(1, 10, "uno", -3.7, 40.4), (2, 32, "dos", 2.35, 48.86)]


@pytest.fixture(scope="module")
def names(dw):
    values = ", ".join(f"({i}, {n}, '{t}', ST_SetSRID(ST_MakePoint({x}, {y}), 4326))" for i, n, t, x, y in ROWS)
    dw.sql(f"""
        DROP SCHEMA IF EXISTS "E2E Names" CASCADE;
        CREATE SCHEMA "E2E Names";
        CREATE TABLE {NAME} (cartodb_id int PRIMARY KEY, "We""ird Col" int, "名前" text, geom geometry(Point, 4326));
        INSERT INTO {NAME} VALUES {values};
        GRANT USAGE ON SCHEMA "E2E Names" TO PUBLIC;
        GRANT SELECT ON {NAME} TO PUBLIC;
    """)
    return NAME


def local(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def handshake(api, token, name, **extra):
    return api.get(f"{MAPS}/table", params={"name": name, **extra}, token=token)


def test_quoted_names_work_through_handshake_tilejson_and_tiles(api, full_token, names):
    for spelling in (names, f"{CONN}.{names}", f'"E2E Names".' + '"Odd.Table ""q"""'):
        body = assert_ok(handshake(api, full_token, spelling))
        assert {c["name"] for c in body["schema"]} == {"cartodb_id", WEIRD, "名前", "geom"}
    tj = assert_ok(api.get(local(body["tilejson"]["url"][0]), token=full_token))
    attrs = {a["attribute"]: a for a in tj["tilestats"]["layers"][0]["attributes"]}
    assert attrs[WEIRD]["min"] == 10 and attrs[WEIRD]["max"] == 32 and attrs[WEIRD]["sum"] == 42
    path = local(tj["tiles"][0]).replace("%7Bz%7D", "{z}").replace("%7Bx%7D", "{x}").replace("%7By%7D", "{y}")
    r = api.get(path.replace("{z}", "0").replace("{x}", "0").replace("{y}", "0"), token=full_token)
    assert r.status == 200, r
    features = mvt.decode(r.body)["default"].features
    assert sorted((f.properties[WEIRD], f.properties["名前"]) for f in features) == [(10, "uno"), (32, "dos")]


def test_stats_and_models_on_quoted_names(api, full_token, names):
    table = urllib.parse.quote(names, safe="")
    column = urllib.parse.quote(WEIRD, safe="")
    stats = assert_ok(api.get(f"/api/v3/stats/{CONN}/{table}/{column}", token=full_token))
    assert stats["min"] == 10 and stats["max"] == 32 and stats["sum"] == 42
    r = api.post(f"/api/v3/sql/{CONN}/model/formula", token=full_token,
                 json_body={"type": "table", "source": names, "params": {"column": WEIRD, "operation": "sum"},
                            "filters": {"名前": {"in": {"values": ["dos"]}}}})
    assert assert_ok(r)["rows"] == [{"value": 32}]


def test_grants_read_names_with_the_same_rules(api, make_token, names):
    exact = make_token([names], allowed_apis=["maps"])["token"]
    schema_wide = make_token(['"E2E Names".*'], allowed_apis=["maps"])["token"]
    folded = make_token(["e2e names.odd"], allowed_apis=["maps"])["token"]
    assert_ok(handshake(api, exact, names))
    assert_ok(handshake(api, exact, f"{CONN}.{names}"))
    assert_ok(handshake(api, schema_wide, names))
    assert_error(handshake(api, folded, names), 403, "source_not_granted")


@pytest.mark.parametrize("bad", ["a..b", "a.b.c.d", '"open', "s.", '"E2E Names"x.t'])
def test_malformed_names_are_400_naming_the_parameter(api, full_token, admin, bad):
    doc = assert_error(handshake(api, full_token, bad), 400, "invalid_source")
    assert "table name" in doc["error"], doc
    doc = assert_error(api.post(f"/api/v3/imports?{h.encode_query({'connection': CONN, 'destination': bad})}",
                                data=b"a,b\n1,2\n", headers={"Content-Type": "application/octet-stream"},
                                token=admin.token), 400, "invalid_destination")
    assert "destination" in doc["error"], doc
    doc = assert_error(api.post("/api/v3/lds/geocoding/table", token=admin.token,
                                json_body={"connection": CONN, "table": bad, "addressColumn": "name"}), 400, "invalid_parameter")
    assert "table" in doc["error"], doc


def test_nul_in_a_column_name_is_a_400_not_a_500(api, full_token, names):
    r = handshake(api, full_token, names, spatialDataColumn="ge\u0000om")
    assert r.status == 400, r
