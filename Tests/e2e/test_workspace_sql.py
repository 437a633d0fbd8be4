"""What the SQL editor and the explorer stand on (issue 14): the SQL API pages a JSON result with
limit/offset and names an error's position; each user's history and saved queries are theirs alone; the
explorer pages, sorts and searches a table and reports its size."""

from __future__ import annotations

import urllib.parse

import pytest

from helpers import assert_error, assert_ok, unique
from test_workspace_explorer import explore, table_path  # noqa: F401  (fixture)
from test_workspace_maps import editor, viewer  # noqa: F401  (fixtures)

HISTORY = "/api/v3/workspace/sql/history"
QUERIES = "/api/v3/workspace/sql/queries"
SERIES = "SELECT g FROM generate_series(1, 2345) AS g ORDER BY g"


def test_query_pages_with_limit_and_offset(api, full_token):
    first = assert_ok(api.sql(SERIES, full_token, method="POST", extra={"limit": 500}))
    assert [r["g"] for r in first["rows"]] == list(range(1, 501))
    assert first["meta"]["truncated"] is True and first["meta"]["rowCount"] == 500
    last = assert_ok(api.sql(SERIES, full_token, method="POST", extra={"limit": 500, "offset": 2000}))
    assert [r["g"] for r in last["rows"]] == list(range(2001, 2346))
    assert "truncated" not in last["meta"] and last["meta"]["offset"] == 2000
    # GET too (the query string carries them as text); past the end: no rows, no error.
    beyond = assert_ok(api.sql(SERIES, full_token, extra={"limit": "10", "offset": "5000"}))
    assert beyond["rows"] == [] and "truncated" not in beyond["meta"]
    # Without them, a result is whole (up to the configured cap) as before.
    assert len(assert_ok(api.sql(SERIES, full_token, method="POST"))["rows"]) == 2345


@pytest.mark.parametrize("extra, fragment", [({"limit": 0}, "limit"), ({"offset": -1}, "offset"), ({"limit": "many"}, "limit"),
                                            ({"limit": 10, "format": "csv"}, "JSON")])
def test_bad_paging_is_a_400(api, full_token, extra, fragment):
    doc = assert_error(api.sql("SELECT 1", full_token, method="POST", extra=extra), 400, "invalid_parameter")
    assert fragment in doc["error"]


def test_error_names_its_position(api, full_token, viewer):  # noqa: F811
    q = "SELECT 1,\n  nope_column FROM generate_series(1, 2) AS g"
    doc = assert_error(api.sql(q, full_token, method="POST"), 400, "column_not_found")
    assert doc["position"] == q.index("nope_column") + 1, doc
    # A viewer's read-only session checks through EXPLAIN first: the position still points into the caller's text.
    doc = assert_error(api.sql(q, session=viewer, method="POST"), 400, "column_not_found")
    assert doc["position"] == q.index("nope_column") + 1, doc
    # Errors without a place in the text have none.
    assert "position" not in assert_error(api.sql("SELECT 1/0", full_token, method="POST"), 400)


def test_history_is_recorded_listed_capped_and_cleared(api, admin):
    marker = unique("hist")
    r = assert_ok(api.post(HISTORY, token=admin.token, json_body={"connection": "carto_dw", "sql": f"SELECT '{marker}'",
                                                                  "rowCount": 1, "durationMs": 12.5}), 201)
    assert r["kind"] == "history" and r["rowCount"] == 1 and r["durationMs"] == 12.5 and "name" not in r
    assert_ok(api.post(HISTORY, token=admin.token, json_body={"connection": "carto_dw", "sql": "SELECT nope", "error": "column does not exist"}), 201)
    data = assert_ok(api.get(HISTORY, token=admin.token))["data"]
    assert data[0]["error"] == "column does not exist" and data[1]["sql"] == f"SELECT '{marker}'"
    for i in range(105):
        assert_ok(api.post(HISTORY, token=admin.token, json_body={"connection": "carto_dw", "sql": f"SELECT {i}"}), 201)
    data = assert_ok(api.get(HISTORY, token=admin.token))["data"]
    assert len(data) == 100 and data[0]["sql"] == "SELECT 104"
    assert r["id"] not in {e["id"] for e in data}, "the oldest entries are dropped"
    assert api.delete(HISTORY, token=admin.token).status == 204
    assert assert_ok(api.get(HISTORY, token=admin.token))["data"] == []


@pytest.mark.parametrize("body, code", [({"sql": "SELECT 1"}, "missing_parameter"), ({"connection": "carto_dw"}, "missing_parameter"),
                                        ({"connection": "carto_dw", "sql": "   "}, "invalid_parameter"),
                                        ({"connection": "carto_dw", "sql": "SELECT 1", "rowCount": -3}, "invalid_parameter"),
                                        ({"connection": "carto_dw", "sql": 7}, "invalid_parameter")])
def test_bad_history_entries_are_400(api, admin, body, code):
    assert_error(api.post(HISTORY, token=admin.token, json_body=body), 400, code)


def test_saved_queries_belong_to_their_user(api, admin, editor):  # noqa: F811
    name = unique("Big cities")
    q = assert_ok(api.post(QUERIES, session=editor, json_body={"name": f"  {name} ", "connection": "carto_dw",
                                                                   "sql": "SELECT * FROM public.e2e_places"}), 201)
    assert q["name"] == name and q["kind"] == "saved"
    path = f"{QUERIES}/{q['id']}"
    assert [x["id"] for x in assert_ok(api.get(QUERIES, session=editor))["data"]] == [q["id"]]
    # Nobody else sees, changes or deletes it, not even an admin; the answer is the same as for no such query.
    assert q["id"] not in {x["id"] for x in assert_ok(api.get(QUERIES, token=admin.token))["data"]}
    for r in (api.get(path, token=admin.token), api.patch(path, token=admin.token, json_body={"name": "mine now"}),
              api.delete(path, token=admin.token), api.get(f"{QUERIES}/not-a-uuid", session=editor)):
        assert_error(r, 404, "query_not_found")
    changed = assert_ok(api.patch(path, session=editor, json_body={"sql": "SELECT 2"}))
    assert changed["sql"] == "SELECT 2" and changed["name"] == name
    assert_error(api.patch(path, session=editor, json_body={"name": ""}), 400, "invalid_parameter")
    assert_error(api.post(QUERIES, session=editor, json_body={"connection": "carto_dw", "sql": "SELECT 1"}), 400, "missing_parameter")
    assert api.delete(path, session=editor).status == 204
    assert_error(api.get(path, session=editor), 404, "query_not_found")


def test_history_needs_a_user(api, full_token):
    assert api.get(HISTORY, token=full_token).status in (401, 403)
    assert api.get(HISTORY).status == 401


def rows_path(fqn: str, **params) -> str:
    return f"{table_path(fqn)}/rows" + ("?" + urllib.parse.urlencode(params) if params else "")


def test_explorer_rows_sort_search_and_page(api, admin, dw, explore):  # noqa: F811
    dw.sql("""
        DROP TABLE IF EXISTS e2e_explore.paged;
        CREATE TABLE e2e_explore.paged (id integer, label text, note text, geom geometry(Point, 4326));
        INSERT INTO e2e_explore.paged SELECT g, 'item ' || g, CASE WHEN g % 10 = 0 THEN '50%_off' END,
               ST_SetSRID(ST_MakePoint(g, 0), 4326) FROM generate_series(1, 120) AS g;
    """)
    r = assert_ok(api.get(rows_path("e2e_explore.paged"), token=admin.token))
    assert [c["name"] for c in r["columns"]] == ["id", "label", "note", "geom"] and r["columns"][3]["type"] == "geometry"
    assert len(r["rows"]) == 50 and set(r["rows"][0]) == {"id", "label", "note"}, "no geometry in the rows"
    desc = assert_ok(api.get(rows_path("e2e_explore.paged", orderBy="id", order="desc", limit=10, offset=10), token=admin.token))
    assert [x["id"] for x in desc["rows"]] == list(range(110, 100, -1))
    # The search is literal text in any column: "%" and "_" are not wildcards.
    found = assert_ok(api.get(rows_path("e2e_explore.paged", search="0%_O", orderBy="id"), token=admin.token))
    assert [x["id"] for x in found["rows"]] == list(range(10, 121, 10)) and found["meta"]["matches"] == 12
    assert assert_ok(api.get(rows_path("e2e_explore.paged", search="%"), token=admin.token))["meta"]["matches"] == 12
    none = assert_ok(api.get(rows_path("e2e_explore.paged", search="nothing like it"), token=admin.token))
    assert none["rows"] == [] and none["meta"]["matches"] == 0 and none["meta"]["matchesCapped"] is False
    # Quoted names work as everywhere else.
    mixed = assert_ok(api.get(rows_path('e2e_explore."Mixed Case"', orderBy="n", order="desc", limit=3), token=admin.token))
    assert [x["n"] for x in mixed["rows"]] == [7, 6, 5]


@pytest.mark.parametrize("params, status, code", [
    ({"orderBy": "nope"}, 400, "column_not_found"), ({"orderBy": "geom"}, 400, "column_not_found"),
    ({"order": "sideways"}, 400, "invalid_parameter"), ({"limit": 0}, 400, "invalid_parameter"),
    ({"limit": 5000}, 400, "invalid_parameter"), ({"offset": -1}, 400, "invalid_parameter"),
    ({"search": "x" * 201}, 400, "invalid_parameter")])
def test_explorer_rows_bad_input(api, admin, explore, params, status, code):  # noqa: F811
    doc = assert_error(api.get(rows_path("e2e_explore.shapes", **params), token=admin.token), status, code)
    if code == "column_not_found":
        assert doc["column_name"] == params["orderBy"]


def test_explorer_rows_of_a_missing_table(api, admin):
    assert_error(api.get(rows_path("e2e_explore.nope"), token=admin.token), 404, "table_not_found")
    assert_error(api.get(rows_path("a.b.c.d"), token=admin.token), 404, "table_not_found")


def test_table_sizes(api, admin, explore):  # noqa: F811
    t = assert_ok(api.get(table_path("e2e_explore.shapes"), token=admin.token))
    assert t["bytes"] >= t["dataBytes"] > 0
    listed = assert_ok(api.get("/api/v3/workspace/connections/carto_dw/schemas/e2e_explore/tables", token=admin.token))["data"]
    assert all(isinstance(x["bytes"], int) for x in listed)
