"""Exports (issue 14) through nginx with the real maps-api (SQL API) and sql-worker: each format
opens with GDAL with the right row count and CRS, signed download URLs are the owner's only and
expire, a failing, cancelled or too-large export leaves no file, and a million-row export keeps
ogr2ogr (the only process holding rows) and the worker under 256 MB RSS."""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

import helpers as h
from helpers import assert_error, assert_ok, login, wait_until

EXPORTS = "/api/v3/sql/carto_dw/exports"
ROWS = 257
PASSWORD = "export-member-" + os.urandom(6).hex()


@pytest.fixture(scope="module")
def points(stack, dw):
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS e2e_export_pts;
        CREATE TABLE e2e_export_pts AS
          SELECT g AS id, 'place ' || g AS name, g * 1.5 AS value,
                 ST_SetSRID(ST_MakePoint(-170 + (g % 340), -80 + (g % 160)), 4326)::geometry(Point, 4326) AS geom
          FROM generate_series(1, {ROWS}) g;""")
    return "public.e2e_export_pts"


@pytest.fixture(scope="module")
def editor(api, admin):
    email = f"export-editor-{os.urandom(3).hex()}@example.com"
    inv = assert_ok(api.post("/api/v3/invitations", token=admin.token, json_body={"email": email, "role": "editor"}), 201)
    assert_ok(api.post("/api/v3/auth/invitations/accept", json_body={"token": inv["token"], "password": PASSWORD}), 201)
    return login(api, email, PASSWORD)


def start(api, auth, **body):
    r = api.post(EXPORTS, json_body=body, **auth)
    job = assert_ok(r, 201)
    assert job["status"] in ("pending", "running", "success") and job["jobId"], job
    return job["jobId"]


def final(api, auth, job_id, timeout=60.0):
    state = {}

    def done():
        state.clear()
        state.update(assert_ok(api.get(f"{EXPORTS}/{job_id}", **auth)))
        return state["status"] in ("success", "failure", "cancelled", "expired")

    wait_until(done, timeout, interval=0.3)
    return state


def download(api, url, **auth) -> h.Resp:
    return api.get(url, **auth)


def ogrinfo(path: Path | str) -> str:
    r = subprocess.run(["ogrinfo", "-ro", "-so", "-al", str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def feature_count(info: str) -> int:
    return sum(int(n) for n in re.findall(r"^Feature Count: (\d+)$", info, re.M))


def export_dir(stack, job_id) -> Path:
    return Path(stack.env["TESSERA_IMPORT_DIR"]) / "exports" / f"job-{job_id}"


def export_backends(stack) -> int:
    return int(stack.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tessera-export'"))


def signed(stack, job_id, user_id, expires) -> str:
    """White-box: a URL signed with the stack's own secret, as the programs derive the key."""
    master = bytes.fromhex(stack.secret_key_file.read_text().strip())
    key = hmac.new(master, b"tessera/export-urls", hashlib.sha256).digest()
    sig = h.b64url(hmac.new(key, f"export:{job_id}:{user_id}:{expires}".encode(), hashlib.sha256).digest())
    return f"{EXPORTS}/{job_id}/file?expires={expires}&signature={sig}"


# --------------------------------------------------------------------------------------------
# formats


@pytest.mark.parametrize("fmt,suffix", [("csv", "csv"), ("geojson", "geojson"), ("gpkg", "gpkg"), ("fgb", "fgb"), ("shp", "zip")])
def test_each_format_opens_with_gdal_with_rows_and_crs(api, admin, points, tmp_path, fmt, suffix):
    auth = {"token": admin.token}
    job_id = start(api, auth, query=f"SELECT id, name, value, geom FROM {points} ORDER BY id", format=fmt, name="places")
    body = final(api, auth, job_id)
    assert body["status"] == "success", body
    assert body["format"] == fmt and body["result"]["bytes"] > 0
    r = download(api, body["downloadUrl"], **auth)
    assert r.status == 200, r
    assert f'filename="places.{suffix}"' in r.header("Content-Disposition")
    assert r.header("Cache-Control") == "private, no-store"
    path = tmp_path / f"places.{suffix}"
    path.write_bytes(r.body)
    info = ogrinfo("/vsizip/" + str(path) if fmt == "shp" else path)
    assert feature_count(info) == ROWS, info
    if fmt == "csv":
        # A CSV has no CRS: the geometry travels as WKT.
        assert r.body.decode().splitlines()[1].startswith('"POINT (') or "POINT (" in r.body.decode().splitlines()[1]
    else:
        assert 'ID["EPSG",4326]' in info or "WGS 84" in info, info
        # A query's geometry column has no declared type, so GeoPackage/FlatGeobuf say "Unknown (any)".
        assert re.search(r"^Geometry: (Point|Unknown \(any\))$", info, re.M), info


def test_a_table_exports_by_name(api, admin, points, tmp_path):
    auth = {"token": admin.token}
    body = final(api, auth, start(api, auth, table=points, format="gpkg"))
    assert body["status"] == "success", body
    assert body["name"] == "publice2e_export_pts" or body["name"].endswith("e2e_export_pts")
    path = tmp_path / "t.gpkg"
    path.write_bytes(download(api, body["downloadUrl"], **auth).body)
    assert feature_count(ogrinfo(path)) == ROWS


def test_progress_is_reported_and_the_cookie_session_exports_too(api, admin, points):
    auth = {"session": admin.session}
    job_id = start(api, auth, query=f"SELECT * FROM {points}", format="geojson")
    body = final(api, auth, job_id)
    assert body["status"] == "success", body
    assert download(api, body["downloadUrl"], **auth).status == 200


# --------------------------------------------------------------------------------------------
# signed URLs


def test_signed_url_is_the_owners_and_short_lived(api, stack, admin, editor, points):
    auth = {"token": admin.token}
    body = final(api, auth, start(api, auth, query=f"SELECT * FROM {points}", format="csv"))
    url = body["downloadUrl"]
    assert body["urlExpiresAt"] <= time.time() + 900 + 5
    assert download(api, url, **auth).status == 200

    parsed = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(parsed.query))
    # Tampered: another expiry with the old signature, a changed signature, no signature at all.
    assert_error(download(api, f"{parsed.path}?expires={int(q['expires']) + 3600}&signature={q['signature']}", **auth), 403, "export_url_invalid")
    bad_sig = q["signature"][:-2] + ("AA" if not q["signature"].endswith("AA") else "BB")
    assert_error(download(api, f"{parsed.path}?expires={q['expires']}&signature={bad_sig}", **auth), 403, "export_url_invalid")
    assert_error(download(api, parsed.path, **auth), 403, "export_url_invalid")
    # Expired: correctly signed, but in the past.
    assert_error(download(api, signed(stack, body["jobId"], admin.id, int(time.time()) - 5), **auth), 403, "export_url_expired")
    # Another (non-admin) user of the organisation does not see the admin's export at all.
    assert_error(download(api, url, session=editor), 404, "job_not_found")
    assert_error(api.get(f"{EXPORTS}/{body['jobId']}", session=editor), 404, "job_not_found")
    # No credentials: refused.
    assert download(api, url).status == 401


def test_a_url_handed_to_one_user_does_not_work_for_another(api, admin, editor, points):
    auth = {"session": editor}
    body = final(api, auth, start(api, auth, query=f"SELECT * FROM {points}", format="csv"))
    assert body["status"] == "success", body
    assert download(api, body["downloadUrl"], **auth).status == 200
    # The admin may see the editor's job, but not with the editor's URL: it is signed for the editor.
    assert_error(download(api, body["downloadUrl"], token=admin.token), 403, "export_url_invalid")
    mine = assert_ok(api.get(f"{EXPORTS}/{body['jobId']}", token=admin.token))
    assert download(api, mine["downloadUrl"], token=admin.token).status == 200


# --------------------------------------------------------------------------------------------
# bad input: nothing half-written


def test_bad_requests_are_clear_errors(api, admin, points):
    auth = {"token": admin.token}
    assert_error(api.post(EXPORTS, json_body={"query": "SELECT 1", "format": "xlsx"}, **auth), 400, "invalid_parameter")
    assert_error(api.post(EXPORTS, json_body={"format": "csv"}, **auth), 400, "missing_parameter")
    r = api.post(EXPORTS, json_body={"query": "SELEC * FROM nowhere", "format": "csv"}, **auth)
    assert r.status == 400 and "syntax error" in r.json()["error"], r
    r = api.post(EXPORTS, json_body={"query": "SELECT * FROM no_such_table_e2e", "format": "csv"}, **auth)
    assert r.status == 404 and "no_such_table_e2e" in r.json()["error"], r
    # Only a query: a write or a script is refused before any job exists.
    r = api.post(EXPORTS, json_body={"query": f"DELETE FROM {points}", "format": "csv"}, **auth)
    assert r.status == 400, r
    r = api.post(EXPORTS, json_body={"query": f"SELECT 1; DROP TABLE {points}", "format": "csv"}, **auth)
    assert r.status == 400, r
    # The SQL API streams CSV/GeoJSON; for GDAL's file formats it points to exports.
    r = api.sql("SELECT 1", admin.token, fmt="gpkg")
    assert_error(r, 400, "invalid_parameter")
    assert "/exports" in r.json()["hint"]
    assert_error(api.post("/api/v3/sql/no_such_conn/exports", json_body={"query": "SELECT 1", "format": "csv"}, **auth), 404)


def test_a_query_failing_while_running_fails_the_job_and_leaves_no_file(api, stack, admin):
    auth = {"token": admin.token}
    job_id = start(api, auth, query="SELECT g, 1 / (g - 5000) AS boom FROM generate_series(1, 10000) g", format="gpkg")
    body = final(api, auth, job_id)
    assert body["status"] == "failure", body
    assert "division by zero" in body["error"]["msg"], body
    assert "downloadUrl" not in body
    assert not export_dir(stack, job_id).exists()


def test_cancel_stops_the_export_and_leaves_no_file(api, stack, admin):
    auth = {"token": admin.token}
    job_id = start(api, auth, query="SELECT g, pg_sleep(0.01) AS s FROM generate_series(1, 100000) g -- e2e-export-cancel",
                   format="csv")
    # ogr2ogr reads through a cursor: the active statement is a FETCH of its connection.
    wait_until(lambda: export_backends(stack) >= 1 and export_dir(stack, job_id).exists(), 30)
    body = assert_ok(api.delete(f"{EXPORTS}/{job_id}", **auth))
    assert body["status"] in ("cancelled", "running"), body
    body = final(api, auth, job_id)
    assert body["status"] == "cancelled", body
    wait_until(lambda: export_backends(stack) == 0, 30)
    wait_until(lambda: not export_dir(stack, job_id).exists(), 10)
    assert_error(download(api, signed(stack, job_id, admin.id, int(time.time()) + 60), **auth), 410, "export_gone")


def test_an_export_over_the_size_limit_fails_and_leaves_no_file(api, stack, admin):
    auth = {"token": admin.token}
    binary = Path(os.environ.get("STACK_BIN", Path(__file__).resolve().parents[2] / ".build" / "release")).resolve() / "tessera-sql-worker"
    stack.stop_api("sql-worker")
    try:
        stack.start_worker("sql-worker", binary, env={"TESSERA_EXPORT_MAX_BYTES": "200000"})
        job_id = start(api, auth, query="SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 200000) g", format="csv")
        body = final(api, auth, job_id, 120)
        assert body["status"] == "failure", body
        assert "larger than the limit of 200000 bytes" in body["error"]["msg"], body
        assert not export_dir(stack, job_id).exists()
    finally:
        stack.stop_api("sql-worker")
        stack.start_worker("sql-worker", binary)


# --------------------------------------------------------------------------------------------
# memory


def test_a_million_rows_export_stays_under_256_mb(api, stack, admin, tmp_path):
    auth = {"token": admin.token}
    worker_pid = stack.pid("sql-worker")
    started = time.monotonic()
    job_id = start(api, auth, format="gpkg", name="million", query=(
        "SELECT g AS id, 'row ' || g AS name, ST_SetSRID(ST_MakePoint(-180 + (g % 36000) / 100.0, -80 + (g % 16000) / 100.0), 4326) AS geom "
        "FROM generate_series(1, 1000000) g"))
    body = final(api, auth, job_id, 900)
    elapsed = time.monotonic() - started
    assert body["status"] == "success", body
    child_kib = body["result"]["peakRssKiB"]
    worker_kib = h.kib(h.proc_status(worker_pid)["VmHWM"])
    print(f"\n1M-row GeoPackage export: {elapsed:.1f} s, {body['result']['bytes'] / 1e6:.1f} MB, "
          f"ogr2ogr peak RSS {child_kib / 1024:.1f} MiB, sql-worker peak RSS {worker_kib / 1024:.1f} MiB")
    assert 0 < child_kib < 256 * 1024
    assert worker_kib < 256 * 1024
    path = tmp_path / "million.gpkg"
    r = download(api, body["downloadUrl"], **auth)
    assert r.status == 200
    path.write_bytes(r.body)
    assert feature_count(ogrinfo(path)) == 1_000_000


# --------------------------------------------------------------------------------------------
# a builder layer's export: query parameters and widget filters (issue 14)


def exported_rows(api, auth, tmp_path, **body) -> list[dict]:
    """The rows of a finished GeoJSON export, read back with the json module."""
    done = final(api, auth, start(api, auth, format="geojson", **body))
    assert done["status"] == "success", done
    path = tmp_path / f"{done['jobId']}.geojson"
    path.write_bytes(download(api, done["downloadUrl"], **auth).body)
    import json
    return [f["properties"] for f in json.loads(path.read_text())["features"]]


def test_a_query_source_exports_with_its_query_parameters(api, admin, points, tmp_path):
    auth = {"token": admin.token}
    # Values that need quoting travel unchanged: a quote, a backslash, a `$1` inside a value.
    tricky = "it's a \\ back$1slash"
    rows = exported_rows(api, auth, tmp_path, query=f"SELECT id, name, $2::text AS note, geom FROM {points} WHERE id <= $1 ORDER BY id",
                         queryParameters=[5, tricky])
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]
    assert {r["note"] for r in rows} == {tricky}
    # The statement text keeps a `$1` that sits inside a string constant as it is.
    rows = exported_rows(api, auth, tmp_path, query=f"SELECT id, '$1' AS literal, geom FROM {points} WHERE id = $1", queryParameters=["7"])
    assert rows == [{"id": 7, "literal": "$1"}]


def test_a_layer_exports_with_its_widget_filters(api, admin, points, tmp_path):
    auth = {"token": admin.token}
    # A category widget's `in` and a range widget's `between`, as the builder holds them (CARTO's filters).
    filters = {"id": {"between": {"owner": "w1", "values": [[10, 20]]}},
               "name": {"in": {"owner": "w2", "values": ["place 12", "place 15", "place 99"]}}}
    rows = exported_rows(api, auth, tmp_path, table=points, filters=filters)
    assert sorted(r["id"] for r in rows) == [12, 15]
    rows = exported_rows(api, auth, tmp_path, table=points, filters=filters, filtersLogicalOperator="or")
    assert len(rows) == 11 + 1  # 10..20, or place 99
    # A query source too, with its parameters and the filters together.
    rows = exported_rows(api, auth, tmp_path, query=f"SELECT * FROM {points} WHERE id > $1", queryParameters=[14], filters=filters)
    assert [r["id"] for r in rows] == [15]
    # The GeoPackage holds the same rows (GDAL's count).
    done = final(api, auth, start(api, auth, table=points, filters=filters, format="gpkg"))
    path = tmp_path / "filtered.gpkg"
    path.write_bytes(download(api, done["downloadUrl"], **auth).body)
    assert feature_count(ogrinfo(path)) == 2


@pytest.mark.parametrize("body, status, code", [
    ({"filters": {"nope": {"in": {"values": [1]}}}}, 400, "column_not_found"),
    ({"filters": {"id": {"sideways": {"values": [1]}}}}, 400, "invalid_filter"),
    ({"filters": "not an object"}, 400, "invalid_filter"),
    ({"query": "SELECT * FROM public.e2e_export_pts WHERE id = $1", "queryParameters": ["a\u0000b"]}, 400, None),
    ({"query": "SELECT * FROM public.e2e_export_pts WHERE id = $1", "queryParameters": "[oops"}, 400, None),
    ({"query": "SELECT * FROM public.e2e_export_pts WHERE id = $1"}, 400, None),
])
def test_bad_filters_and_parameters_are_refused_before_queueing(api, admin, points, body, status, code):
    body = {"format": "csv", **({"table": points} if "query" not in body else {}), **body}
    doc = h.assert_error(api.post(EXPORTS, json_body=body, token=admin.token), status, code)
    assert doc["error"]
