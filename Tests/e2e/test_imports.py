"""Imports API (contract §10) through nginx with the real import-api and import-worker.

Fixture files are generated here from a GeoJSON source with ogr2ogr (GeoPackage, FlatGeobuf,
Shapefile, KML, GPX, GeoJSONSeq) and zipped with Python's zipfile. Covers every accepted format, the
three upload modes (raw body, multipart, URL), atomic overwrite, cancel, the per-organisation limit
(429), hostile files (zip bomb / slip / symlink, XXE, VRT, missing .dbf, empty), SSRF refusals with
re-checked redirects, and a SIGKILLed worker whose job completes exactly once after restart.

URL imports: the sandbox has no non-loopback host, so a positive URL test needs an exemption. The
import-worker is restarted here with TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST=127.0.0.1:<port A> (a
test-only key, empty by default): port A serves files, port B is not exempt, and a redirect from A to
B must be refused at the hop. The worker also gets a 4 s lease (TESSERA_WORKER_LEASE_S) so the
kill -9 test does not wait the default 30 s.
"""
from __future__ import annotations

import http.client
import http.server
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
import zipfile
from pathlib import Path

import pytest

import helpers as h
from helpers import assert_error, assert_ok, wait_until

IMPORTS = "/api/v3/imports"
SCHEMA = "e2e_imp"
API_LIMIT = 120 * 1024 * 1024  # import-api's TESSERA_IMPORT_MAX_BYTES in this module
POINTS = 25
BIG_ROWS = 2_200_000           # ~100 MB CSV for the memory and kill -9 tests


# --------------------------------------------------------------------------------------------
# fixtures


def _ogr(*args: str) -> None:
    r = subprocess.run(["ogr2ogr", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _zip(path: Path, members: dict[str, Path | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, src in members.items():
            if isinstance(src, Path):
                z.write(src, name)
            else:
                z.writestr(name, src)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("imports")
    rnd = random.Random(7)
    feats = [{"type": "Feature",
              "properties": {"name": f"place {i}", "value": i * 1.5, "Mixed Case-Col": f"x{i}"},
              "geometry": {"type": "Point", "coordinates": [round(rnd.uniform(-170, 170), 5), round(rnd.uniform(-80, 80), 5)]}}
             for i in range(POINTS)]
    src = d / "points.geojson"
    src.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    polys = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": 1}, "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}},
        {"type": "Feature", "properties": {"id": 2}, "geometry": {"type": "MultiPolygon", "coordinates": [
            [[[2, 2], [3, 2], [3, 3], [2, 2]]], [[[4, 4], [5, 4], [5, 5], [4, 4]]]]}},
        {"type": "Feature", "properties": {"id": 3}, "geometry": {"type": "Polygon", "coordinates": [[[6, 6], [7, 6], [7, 7], [6, 6]]]}},
    ]}
    (d / "polys.geojson").write_text(json.dumps(polys))
    out = {"geojson": src, "polys_geojson": d / "polys.geojson"}
    # Read without ogrinfo (GeoJSONHead): a null geometry first, an attribute called geom, the layer named.
    (d / "geomprop.geojson").write_text(json.dumps({"type": "FeatureCollection", "name": "named layer", "features": [
        {"type": "Feature", "properties": {"geom": "first", "n": 1}, "geometry": None},
        {"type": "Feature", "properties": {"geom": "second", "n": 2}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
        {"type": "Feature", "properties": {"geom": "third", "n": 3}, "geometry": {"type": "LineString", "coordinates": [[2, 2], [3, 3]]}},
    ]}))
    out["geomprop_geojson"] = d / "geomprop.geojson"
    # "type" after "features": not followed from the first bytes, so ogrinfo reads it as before.
    (d / "late.geojson").write_text('{"features": ' + json.dumps(polys["features"][0::2]) + ', "type": "FeatureCollection"}')
    out["late_geojson"] = d / "late.geojson"
    # A named CRS, before or after the features: reprojected to EPSG:4326 (111319.49 m east = 1 degree).
    mercator = [{"type": "Feature", "properties": {"n": 1}, "geometry": {"type": "Point", "coordinates": [111319.490793, 0]}}]
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}
    (d / "crs_first.geojson").write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": mercator}))
    (d / "crs_last.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": mercator, "crs": crs}))
    out["crs_first"], out["crs_last"] = d / "crs_first.geojson", d / "crs_last.geojson"
    _ogr("-f", "GeoJSONSeq", str(d / "points.geojsonl"), str(src)); out["geojsonseq"] = d / "points.geojsonl"
    _ogr("-f", "GPKG", str(d / "points.gpkg"), str(src)); out["gpkg"] = d / "points.gpkg"
    _ogr("-f", "FlatGeobuf", str(d / "points.fgb"), str(src)); out["fgb"] = d / "points.fgb"
    _ogr("-f", "KML", str(d / "points.kml"), str(src)); out["kml"] = d / "points.kml"
    out["kmz"] = _zip(d / "points.kmz", {"doc.kml": d / "points.kml"})
    _ogr("-f", "GPX", "-dsco", "GPX_USE_EXTENSIONS=YES", str(d / "points.gpx"), str(src)); out["gpx"] = d / "points.gpx"
    shp = d / "shp"
    shp.mkdir()
    _ogr("-f", "ESRI Shapefile", str(shp / "polys.shp"), str(d / "polys.geojson"))
    out["shpzip"] = _zip(d / "polys.zip", {f"polys/polys.{e}": shp / f"polys.{e}" for e in ("shp", "shx", "dbf", "prj")})
    out["shp_no_dbf"] = _zip(d / "nodbf.zip", {f"polys.{e}": shp / f"polys.{e}" for e in ("shp", "shx", "prj")})
    lines = ["name,value,latitude,longitude"] + [f"place {i},{i},{f['geometry']['coordinates'][1]},{f['geometry']['coordinates'][0]}"
                                                 for i, f in enumerate(feats)]
    (d / "points.csv").write_text("\n".join(lines) + "\n"); out["csv"] = d / "points.csv"
    (d / "points.tsv").write_text("\n".join(l.replace(",", "\t") for l in lines) + "\n"); out["tsv"] = d / "points.tsv"
    (d / "wkt.csv").write_text('id,label,wkt\n1,a,"POINT (1 2)"\n2,b,"LINESTRING (0 0,1 1)"\n3,c,"POLYGON ((0 0,1 0,1 1,0 0))"\n')
    out["wkt_csv"] = d / "wkt.csv"
    (d / "nogeom.csv").write_text("a,b\n1,x\n2,y\n3,z\n"); out["nogeom_csv"] = d / "nogeom.csv"
    out["csvzip"] = _zip(d / "csv.zip", {"data/points.csv": d / "points.csv", "readme.md": b"not data"})
    # hostile files
    out["corrupt_zip"] = d / "corrupt.zip"
    out["corrupt_zip"].write_bytes(b"PK\x03\x04" + os.urandom(2000))
    with zipfile.ZipFile(d / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.csv", b"\0" * (300 * 1024 * 1024))
    out["bomb"] = d / "bomb.zip"
    # A directory that lies: it declares 500 bytes for a member whose deflate stream holds 3 MB. unzip writes
    # the stream whole (in well under the extraction watch's first look), GDAL's /vsizip/ would read it whole.
    lying = bytearray(_zip(d / "lying.zip", {"rows.csv": b"a,lat,lon\n" + b"1,1,1\n" * (512 * 1024)}).read_bytes())
    struct.pack_into("<I", lying, lying.rfind(b"PK\x01\x02") + 24, 500)
    (d / "lying.zip").write_bytes(bytes(lying))
    out["lying"] = d / "lying.zip"
    with zipfile.ZipFile(d / "many.zip", "w", zipfile.ZIP_STORED) as z:
        for i in range(12_000):
            z.writestr(f"f{i}.txt", b"")
    out["many"] = d / "many.zip"
    out["slip"] = _zip(d / "slip.zip", {"../../evil.csv": b"a,lat,lon\n1,1,1\n"})
    out["abs"] = _zip(d / "abs.zip", {"/tmp/evil-abs.csv": b"a,lat,lon\n1,1,1\n"})
    with zipfile.ZipFile(d / "link.zip", "w") as z:
        info = zipfile.ZipInfo("points.csv")
        info.create_system = 3
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "/etc/passwd")
    out["symlink"] = d / "link.zip"
    out["xxe"] = d / "xxe.kml"
    out["xxe"].write_text('<?xml version="1.0"?>\n<!DOCTYPE kml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
                          '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>&xxe;</name>'
                          '<Point><coordinates>1,2</coordinates></Point></Placemark></Document></kml>\n')
    out["vrt"] = d / "trick.csv"
    out["vrt"].write_text('<OGRVRTDataSource><OGRVRTLayer name="x"><SrcDataSource>/etc/passwd</SrcDataSource>'
                          '</OGRVRTLayer></OGRVRTDataSource>\n')
    out["empty"] = d / "empty.csv"
    out["empty"].write_bytes(b"")
    return out


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.csv"
    rnd = random.Random(11)
    with open(path, "w") as f:
        f.write("id,name,category,latitude,longitude\n")
        for i in range(BIG_ROWS):
            f.write(f"{i},name {i:07d},{'abcdefgh'[i % 8]}cat,{rnd.uniform(-80, 80):.6f},{rnd.uniform(-170, 170):.6f}\n")
    return path


class Files(http.server.SimpleHTTPRequestHandler):
    """Serves the fixture directory, plus /redirect?to=URL (302) and /empty."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", urllib.parse.unquote(self.path.split("=", 1)[1]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


def _serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = lambda *a, **kw: Files(*a, directory=str(directory), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


class Imp:
    def __init__(self, stack, api, admin, files, port_a, port_b):
        self.stack, self.api, self.admin, self.files = stack, api, admin, files
        self.port_a, self.port_b = port_a, port_b

    def url_a(self, name):
        return f"http://127.0.0.1:{self.port_a}/{name}"

    def url_b(self, name):
        return f"http://127.0.0.1:{self.port_b}/{name}"

    def upload(self, path: Path, destination: str | None, *, overwrite=False, token=None, filename=None,
               connection="carto_dw", extra=None, expect=201):
        params = {"connection": connection, "overwrite": overwrite, "filename": filename or path.name}
        if destination:
            params["destination"] = destination
        params.update(extra or {})
        r = upload_stream(self.stack, f"{IMPORTS}?{h.encode_query(params)}", path, token or self.admin.token)
        assert r.status == expect, r
        return r.json()

    def from_url(self, url, destination, *, overwrite=False, token=None, expect=201):
        r = self.api.post(IMPORTS, json_body={"connection": "carto_dw", "url": url, "destination": destination,
                                              "overwrite": overwrite, "autoguessing": True}, token=token or self.admin.token)
        assert r.status == expect, r
        return r.json()

    def status(self, job_id, token=None):
        return assert_ok(self.api.get(f"{IMPORTS}/{job_id}", token=token or self.admin.token))

    def final(self, job_id, timeout=120.0):
        state = {}

        def done():
            state.update(self.status(job_id))
            return state["status"] in ("success", "failure", "cancelled")

        wait_until(done, timeout, 0.2)
        return state

    def run(self, path, destination, **kw):
        job = self.upload(path, destination, **kw)
        return self.final(job["id"])

    def sql(self, text):
        return h.warehouse(self.stack, text)

    def rows(self, table):
        return int(self.sql(f"SELECT count(*) FROM {table}"))

    def leftovers(self):
        return self.sql("SELECT count(*) FROM pg_tables WHERE tablename ~ '^tessera_import_[0-9]+(_second)?$'")


def upload_stream(stack, path_qs: str, file: Path, token: str, content_type="application/octet-stream", chunked=False,
                  timeout=120.0):
    """Streams a file as the request body (never fully in memory)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=timeout)
    try:
        conn.putrequest("POST", path_qs)
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Type", content_type)
        size = file.stat().st_size
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(size))
        conn.endheaders()
        with open(file, "rb") as f:
            while True:
                block = f.read(1 << 20)
                if not block:
                    break
                try:
                    conn.send(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                except (BrokenPipeError, ConnectionResetError):
                    break
        if chunked:
            try:
                conn.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
        r = conn.getresponse()
        return h.Resp(r.status, r.msg, r.read())
    finally:
        conn.close()


def multipart(stack, fields: dict, file: Path, token: str, field_name="file", fields_after=False):
    boundary = "----tessera" + os.urandom(8).hex()
    form = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in fields.items())
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{file.name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + file.read_bytes() + b"\r\n"
    body = (part + form if fields_after else form + part) + f"--{boundary}--\r\n".encode()
    return h.Api(stack).post(IMPORTS, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}, token=token)


@pytest.fixture(scope="module")
def imp(request, stack, api, admin, files):
    BIN, REQUIRE_BINARIES = h.BIN, os.environ.get("STACK_REQUIRE_BINARIES") == "1"
    needed = [BIN / "tessera-import-api", BIN / "tessera-import-worker"]
    if not all(p.is_file() for p in needed):
        msg = "import-api/import-worker not built"
        if REQUIRE_BINARIES:
            pytest.fail(msg)
        pytest.skip(msg)
    root = Path(files["geojson"]).parent
    (root / "empty.bin").write_bytes(b"")
    server_a, port_a = _serve(root)
    server_b, port_b = _serve(root)
    stack.stop_api("import-api")
    stack.start_api("import-api", BIN / "tessera-import-api", env={"TESSERA_IMPORT_MAX_BYTES": str(API_LIMIT),
                                                                 "TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST": f"127.0.0.1:{port_a}"})
    stack.stop_api("import-worker")
    stack.start_worker("import-worker", BIN / "tessera-import-worker",
                       env={"TESSERA_WORKER_LEASE_S": "4", "TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST": f"127.0.0.1:{port_a}"})
    h.warehouse(stack, f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA};")
    try:
        yield Imp(stack, api, admin, files, port_a, port_b)
    finally:
        server_a.shutdown()
        server_b.shutdown()
        # Back to the defaults for whatever runs next.
        stack.stop_api("import-api")
        stack.start_api("import-api", BIN / "tessera-import-api")
        stack.stop_api("import-worker")
        stack.start_worker("import-worker", BIN / "tessera-import-worker")


def assert_imported(imp: Imp, body: dict, table: str, rows: int, geometry: str | None = "POINT"):
    assert body["status"] == "success", body
    assert body["rows"] == rows, body
    assert imp.rows(table) == rows
    if geometry is None:
        assert imp.sql(f"SELECT count(*) FROM information_schema.columns WHERE table_schema || '.' || table_name = '{table}' "
                       "AND udt_name = 'geometry'") == "0"
        return
    got = imp.sql(f"SELECT count(geom) || '|' || string_agg(DISTINCT upper(GeometryType(geom)), ',') || '|' || min(ST_SRID(geom)) "
                  f"FROM {table}")
    assert got == f"{rows}|{geometry}|4326", got
    ids = imp.sql(f"SELECT min(cartodb_id) || '-' || max(cartodb_id) || '-' || count(DISTINCT cartodb_id) FROM {table}")
    assert ids.split("-")[2] == str(rows), ids


# --------------------------------------------------------------------------------------------
# formats


@pytest.mark.parametrize("key,rows,geometry", [
    ("geojson", POINTS, "POINT"), ("geojsonseq", POINTS, "POINT"), ("gpkg", POINTS, "POINT"), ("fgb", POINTS, "POINT"),
    ("kml", POINTS, "POINT"), ("kmz", POINTS, "POINT"), ("gpx", POINTS, "POINT"), ("csv", POINTS, "POINT"),
    ("tsv", POINTS, "POINT"), ("shpzip", 3, "MULTIPOLYGON"), ("csvzip", POINTS, "POINT"),
    ("polys_geojson", 3, "MULTIPOLYGON"), ("late_geojson", 2, "MULTIPOLYGON"),
])
def test_every_format_imports_with_its_row_count(imp, key, rows, geometry):
    table = f"{SCHEMA}.fmt_{key}"
    body = imp.run(imp.files[key], table)
    assert_imported(imp, body, table, rows, geometry)
    assert body["progress"]["percent"] == 100
    assert imp.leftovers() == "0"


def test_csv_geometry_guessing_and_column_names(imp):
    body = imp.run(imp.files["csv"], f"{SCHEMA}.guess_latlon")
    cols = imp.sql(f"SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns "
                   f"WHERE table_schema = '{SCHEMA}' AND table_name = 'guess_latlon'")
    assert cols.split(",")[0] == "cartodb_id" and "geom" in cols and "name" in cols, cols
    assert imp.sql(f"SELECT data_type FROM information_schema.columns WHERE table_name = 'guess_latlon' AND column_name = 'value'") == "integer"
    first = imp.sql(f"SELECT round(ST_Y(geom)::numeric, 5) FROM {SCHEMA}.guess_latlon WHERE name = 'place 0'")
    assert first == str(round(json.loads(imp.files["geojson"].read_text())["features"][0]["geometry"]["coordinates"][1], 5))
    body = imp.run(imp.files["wkt_csv"], f"{SCHEMA}.guess_wkt")
    assert body["status"] == "success" and body["rows"] == 3
    assert imp.sql(f"SELECT string_agg(ST_GeometryType(geom), ',' ORDER BY id) FROM {SCHEMA}.guess_wkt") == \
        "ST_Point,ST_LineString,ST_Polygon"
    body = imp.run(imp.files["geojson"], f"{SCHEMA}.names")
    cols = imp.sql(f"SELECT string_agg(column_name, ',') FROM information_schema.columns WHERE table_name = 'names'")
    assert "mixed_case_col" in cols.split(","), cols


def test_geojson_read_from_its_first_bytes_keeps_an_attribute_called_geom(imp):
    # Lines promoted to Multi* though the first feature has no geometry; the attribute geom becomes geom_1.
    table = f"{SCHEMA}.geomprop"
    body = imp.run(imp.files["geomprop_geojson"], table)
    assert body["status"] == "success" and body["rows"] == 3, body
    assert body["result"]["layer"] == "named layer" and body["result"]["geometryType"] == "MultiLineString", body
    assert any("1 of 3 rows have no geometry" in w for w in body["warnings"]), body
    got = imp.sql(f"SELECT string_agg(geom_1 || ':' || coalesce(GeometryType(geom), '-') || ':' || coalesce(ST_NumGeometries(geom), 0), ',' "
                  f"ORDER BY n) FROM {table}")
    assert got == "first:-:0,second:MULTILINESTRING:1,third:MULTILINESTRING:1", got
    assert imp.leftovers() == "0"


def test_invalid_and_missing_geometries_are_counted_in_the_one_scan_beside_the_index(imp, tmp_path):
    # The count, the rows without geometry and the invalid ones come from one scan that runs beside the
    # index build (StagingScan); each must still be right, and the index and statistics must be there.
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    features = [{"type": "Feature", "properties": {"n": i}, "geometry": g}
                for i, g in enumerate([square, bowtie, None, bowtie, square])]
    path = tmp_path / "invalid.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    table = f"{SCHEMA}.invalid_geoms"
    body = imp.run(path, table)
    assert body["status"] == "success" and body["rows"] == 5, body
    assert any("2 geometries are invalid" in w for w in body["warnings"]), body
    assert any("1 of 5 rows have no geometry" in w for w in body["warnings"]), body
    assert not any("not checked" in w for w in body["warnings"]), body
    assert imp.rows(table) == 5
    assert imp.sql(f"SELECT count(*) FROM pg_indexes WHERE schemaname = '{SCHEMA}' AND tablename = 'invalid_geoms' "
                   f"AND indexdef ILIKE '%gist%'") == "1"
    assert imp.sql(f"SELECT count(*) > 0 FROM pg_stats WHERE schemaname = '{SCHEMA}' AND tablename = 'invalid_geoms'") == "t"
    assert imp.sql(f"SELECT nextval(pg_get_serial_sequence('{table}', 'cartodb_id'))") == "6"
    # The worker's phase clock, for finding the slow step of an import.
    phases = body["result"]["phasesMs"]
    assert {"inspect", "load", "names", "analyze", "index", "scan"} <= set(phases), phases
    assert imp.leftovers() == "0"


@pytest.mark.parametrize("key", ["crs_first", "crs_last"])
def test_geojson_with_a_named_crs_is_reprojected(imp, key):
    table = f"{SCHEMA}.{key}"
    assert imp.run(imp.files[key], table)["status"] == "success"
    assert imp.sql(f"SELECT round(ST_X(geom)::numeric, 6) || ',' || round(ST_Y(geom)::numeric, 6) || ',' || ST_SRID(geom) "
                   f"FROM {table}") == "1.000000,0.000000,4326"


SPLIT_ROWS = 140_000  # about 17.5 MB of GeoJSON: past the size from which the worker loads a file in two halves


def _split_geojson(path: Path, properties) -> Path:
    """SPLIT_ROWS point features, `properties(n)` each, written as GDAL would read them in one file."""
    with path.open("w") as f:
        f.write('{"type": "FeatureCollection", "name": "split", "features": [\n')
        for n in range(SPLIT_ROWS):
            f.write(("," if n else "") + json.dumps({"type": "Feature", "properties": properties(n),
                                                     "geometry": {"type": "Point", "coordinates": [n % 360 - 180, n % 170 - 85]}}) + "\n")
        f.write("]}\n")
    assert path.stat().st_size > 16 << 20
    return path


def _columns(imp, name):
    return imp.sql(f"SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position) FROM information_schema.columns "
                   f"WHERE table_schema = '{SCHEMA}' AND table_name = '{name}'")


def test_a_large_geojson_loads_in_two_halves_with_the_ids_and_columns_of_one_load(imp, tmp_path):
    # Each half is typed by GDAL alone: "late" exists only in the last features, so only the second half
    # has it; the merge adds it (last: after geom, where one load would put it before).
    path = _split_geojson(tmp_path / "split.geojson",
                          lambda n: {"n": n, "name": f"p{n}"} | ({"late": n * 0.5} if n >= SPLIT_ROWS - 10 else {}))
    table = f"{SCHEMA}.split_two"
    body = imp.run(path, table)
    assert_imported(imp, body, table, SPLIT_ROWS)
    assert "merge" in body["result"]["phasesMs"], body["result"]["phasesMs"]
    assert _columns(imp, "split_two") == "cartodb_id:integer,n:integer,name:character varying,geom:USER-DEFINED,late:double precision"
    # Ids as one load numbers them: in file order, 1..n, and the sequence past them.
    got = imp.sql(f"SELECT count(*) FILTER (WHERE cartodb_id <> n + 1) || ',' || count(late) || ',' || sum(late) FROM {table}")
    assert got.split(",")[:2] == ["0", "10"] and float(got.split(",")[2]) == sum(n * 0.5 for n in range(SPLIT_ROWS - 10, SPLIT_ROWS)), got
    assert imp.sql(f"SELECT nextval(pg_get_serial_sequence('{table}', 'cartodb_id'))") == str(SPLIT_ROWS + 1)
    assert imp.sql(f"SELECT count(*) FROM pg_indexes WHERE schemaname = '{SCHEMA}' AND tablename = 'split_two'") == "2"
    assert imp.leftovers() == "0"


def test_halves_gdal_types_differently_load_whole(imp, tmp_path):
    # "v" is an integer in the first half and a real in the second: one load makes it a real, so must the import.
    path = _split_geojson(tmp_path / "split_types.geojson",
                          lambda n: {"n": n, "name": f"p{n}", "v": n if n < SPLIT_ROWS // 2 else n + 0.5})
    table = f"{SCHEMA}.split_types"
    body = imp.run(path, table)
    assert_imported(imp, body, table, SPLIT_ROWS)
    assert _columns(imp, "split_types") == "cartodb_id:integer,n:integer,name:character varying,v:double precision,geom:USER-DEFINED"
    got = imp.sql(f"SELECT count(*) FILTER (WHERE cartodb_id <> n + 1) || ',' || sum(v) FROM {table}")
    assert got.split(",")[0] == "0" and float(got.split(",")[1]) == sum(n if n < SPLIT_ROWS // 2 else n + 0.5 for n in range(SPLIT_ROWS)), got
    phases = body["result"]["phasesMs"]
    assert "merge" in phases and phases["load"] > 0, phases
    assert imp.leftovers() == "0"


def test_a_broken_second_half_fails_with_gdals_message_and_leaves_nothing(imp, tmp_path):
    path = _split_geojson(tmp_path / "split_broken.geojson", lambda n: {"n": n, "name": f"p{n}"})
    text = path.read_bytes()
    # Not JSON near the end, where only the second half's GDAL reads it (the scanner skips what is not structure).
    last = SPLIT_ROWS - 10
    broken = text.replace(b'"p%d"}' % last, b'"p%d" nope}' % last, 1)
    assert broken != text
    path.write_bytes(broken)
    table = f"{SCHEMA}.split_broken"
    body = imp.run(path, table)
    assert body["status"] == "failure", body
    assert "GDAL" in body["error"] and "other half" not in body["error"], body
    assert imp.sql(f"SELECT to_regclass('{table}') IS NULL") == "t"
    assert imp.leftovers() == "0"
    # The worker carries on.
    assert imp.run(imp.files["geojson"], f"{SCHEMA}.after_split_broken")["status"] == "success"


def test_csv_without_geometry_is_a_plain_table_with_a_warning(imp):
    table = f"{SCHEMA}.nogeom"
    body = imp.run(imp.files["nogeom_csv"], table)
    assert_imported(imp, body, table, 3, None)
    assert any("No geometry" in w for w in body["warnings"]), body


def test_multipart_and_url_uploads(imp, tmp_path):
    r = multipart(imp.stack, {"connection": "carto_dw", "destination": f"{SCHEMA}.mp_shp"}, imp.files["shpzip"], imp.admin.token)
    assert r.status == 201, r
    body = imp.final(r.json()["id"])
    assert_imported(imp, body, f"{SCHEMA}.mp_shp", 3, "MULTIPOLYGON")
    assert body["source"]["filename"] == "polys.zip"
    # Fields after a multi-megabyte file part: the parser streams the file and reads the fields later.
    mid = tmp_path / "mp.csv"
    with open(mid, "w") as f:
        f.write("id,lat,lon,note\n")
        for i in range(200_000):
            f.write(f'{i},{(i % 160) - 80},{(i % 340) - 170},"--boundary-like\r\n--text {i}"\n')
    r = multipart(imp.stack, {"connection": "carto_dw", "destination": f"{SCHEMA}.mp_csv"}, mid, imp.admin.token, fields_after=True)
    assert r.status == 201, r
    assert_imported(imp, imp.final(r.json()["id"]), f"{SCHEMA}.mp_csv", 200_000)
    job = imp.from_url(imp.url_a("points.geojson"), f"{SCHEMA}.from_url")
    body = imp.final(job["id"])
    assert_imported(imp, body, f"{SCHEMA}.from_url", POINTS)
    # A redirect within the exempt endpoint is followed (and re-checked).
    job = imp.from_url(imp.url_a(f"redirect?to=/points.gpkg"), f"{SCHEMA}.from_redirect")
    assert_imported(imp, imp.final(job["id"]), f"{SCHEMA}.from_redirect", POINTS)


def test_preview_shows_columns_and_first_rows(imp):
    path = imp.files["csv"]
    r = imp.api.post(f"{IMPORTS}/preview?filename=points.csv", data=path.read_bytes(),
                     headers={"Content-Type": "application/octet-stream"}, token=imp.admin.token)
    body = assert_ok(r)
    assert body["format"] == "csv" and body["totalRows"] == POINTS
    assert len(body["rows"]) == 10 and body["rows"][0]["name"] == "place 0"
    assert body["features"][0]["geometry"]["type"] == "Point"
    assert {c["name"] for c in body["columns"]} >= {"name", "value"}
    body = assert_ok(imp.api.post(f"{IMPORTS}/preview", json_body={"url": imp.url_a("points.gpkg")}, token=imp.admin.token))
    assert body["format"] == "gpkg" and len(body["features"]) == 10
    r = imp.api.post(f"{IMPORTS}/preview", json_body={"url": imp.url_b("points.gpkg")}, token=imp.admin.token)
    assert_error(r, 422, "preview_failed")
    assert "loopback" in r.json()["error"]
    # A zipped Shapefile with its files in a folder of the archive previews every row.
    r = imp.api.post(f"{IMPORTS}/preview?filename=polys.zip", data=imp.files["shpzip"].read_bytes(),
                     headers={"Content-Type": "application/octet-stream"}, token=imp.admin.token)
    body = assert_ok(r)
    assert body["format"] == "shapefile" and body["totalRows"] == 3 and len(body["features"]) == 3, body


@pytest.mark.parametrize("name,text,message", [
    # GDAL alone reads an unclosed quote as one field running to the end: "success, 1 row".
    ("unclosed.csv", 'name,lon,lat\n"a",1,2\n"b,3,4\nc,5,6\n',
     "The CSV is malformed: the quoted field that starts in record 3 (line 3) is never closed"),
    ("stray_quote.csv", 'name,lon,lat\n"a",1,2\n"b,3,4\n"c",5,6\n',
     "The CSV is malformed: record 3 (starting on line 3) has text after a closing quote on line 4"),
    ("extra_field.csv", 'name,lon,lat\na,1,2\n"two\nlines",3,4\nc,5,6,7\n',
     "The CSV is malformed: record 4 (line 5) has 4 fields, but the header has 3"),
])
def test_malformed_csv_fails_saying_what_and_where(imp, tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    table = f"{SCHEMA}.malformed_{name.split('.')[0]}"
    body = imp.run(path, table)
    assert body["status"] == "failure", body
    assert message in body["error"], body
    assert imp.sql(f"SELECT to_regclass('{table}') IS NULL") == "t"
    r = imp.api.post(f"{IMPORTS}/preview?filename={name}", data=path.read_bytes(),
                     headers={"Content-Type": "application/octet-stream"}, token=imp.admin.token)
    assert_error(r, 422, "preview_failed")
    assert message in r.json()["error"]


# --------------------------------------------------------------------------------------------
# overwrite, conflicts, cancel, limits, access


def test_overwrite_is_atomic(imp, files, tmp_path):
    table = f"{SCHEMA}.atomic"
    assert imp.run(files["csv"], table)["status"] == "success"
    assert_error(imp.api.post(f"{IMPORTS}?{h.encode_query({'connection': 'carto_dw', 'destination': table})}",
                              data=files["csv"].read_bytes(), headers={"Content-Type": "application/octet-stream"},
                              token=imp.admin.token), 409, "table_exists")
    big = tmp_path / "mid.csv"
    with open(big, "w") as f:
        f.write("id,lat,lon\n")
        for i in range(300_000):
            f.write(f"{i},{(i % 160) - 80},{(i % 340) - 170}\n")
    job = imp.upload(big, table, overwrite=True)
    seen = set()
    while imp.status(job["id"])["status"] in ("pending", "running"):
        seen.add(imp.rows(table))  # the old table stays readable until the swap
        time.sleep(0.05)
    assert imp.final(job["id"])["status"] == "success"
    assert seen <= {POINTS, 300_000} and POINTS in seen, seen
    assert imp.rows(table) == 300_000
    # A failed overwrite leaves the table as it was.
    body = imp.run(files["corrupt_zip"], table, overwrite=True)
    assert body["status"] == "failure" and "zip" in body["error"], body
    assert imp.rows(table) == 300_000
    assert imp.leftovers() == "0"
    # Inserts after an import get fresh ids (the cartodb_id sequence is past the loaded ones).
    imp.sql(f"INSERT INTO {table} (id) VALUES (-1)")
    assert imp.sql(f"SELECT cartodb_id FROM {table} WHERE id = -1") == "300001"


def test_cancel_stops_the_load_and_leaves_nothing(imp, big_csv):
    table = f"{SCHEMA}.cancelled"
    job = imp.upload(big_csv, table)
    wait_until(lambda: (imp.status(job["id"]).get("progress") or {}).get("phase") == "loading", 60, 0.1)
    body = assert_ok(imp.api.post(f"{IMPORTS}/{job['id']}/cancel", token=imp.admin.token))
    assert body["status"] in ("running", "cancelled")
    assert imp.final(job["id"], 30)["status"] == "cancelled"
    assert imp.sql(f"SELECT to_regclass('{table}') IS NULL") == "t"
    wait_until(lambda: imp.leftovers() == "0", 10)
    assert not _ogr2ogr_running(job["id"])
    imports_dir = imp.stack.root / "imports"
    wait_until(lambda: not any((imports_dir / "uploads").iterdir()) and not any((imports_dir / "work").iterdir()), 10)


def _ogr2ogr_running(job_id) -> bool:
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"ogr2ogr" in cmd and f"tessera_import_{job_id}".encode() in cmd:
                return True
    return False


def test_sixth_concurrent_import_is_429(imp, files):
    BIN = h.BIN
    imp.stack.stop_api("import-worker")
    ids = []
    try:
        for i in range(5):
            ids.append(imp.upload(files["csv"], f"{SCHEMA}.limit_{i}")["id"])
        r = upload_stream(imp.stack, f"{IMPORTS}?connection=carto_dw&destination={SCHEMA}.limit_5", files["csv"], imp.admin.token)
        assert_error(r, 429, "too_many_imports")
        r = imp.api.post(IMPORTS, json_body={"connection": "carto_dw", "url": imp.url_a("points.csv"), "destination": f"{SCHEMA}.limit_6"},
                         token=imp.admin.token)
        assert_error(r, 429, "too_many_imports")
        listed = assert_ok(imp.api.get(IMPORTS, token=imp.admin.token))["results"]
        assert set(ids) <= {j["id"] for j in listed if j["status"] == "pending"}
    finally:
        for job_id in ids:
            assert assert_ok(imp.api.post(f"{IMPORTS}/{job_id}/cancel", token=imp.admin.token))["status"] == "cancelled"
        imp.stack.start_worker("import-worker", BIN / "tessera-import-worker",
                               env={"TESSERA_WORKER_LEASE_S": "4", "TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST": f"127.0.0.1:{imp.port_a}"})
    assert not any((imp.stack.root / "imports" / "uploads").iterdir())  # cancelled pending uploads are deleted
    assert imp.run(files["csv"], f"{SCHEMA}.limit_after")["status"] == "success"


def test_access_rules(imp, files, other_org, make_token):
    job = imp.upload(files["csv"], f"{SCHEMA}.access")
    for path in (f"{IMPORTS}/{job['id']}",):
        assert_error(imp.api.get(path, token=other_org.token), 404, "import_not_found")
    assert_error(imp.api.post(f"{IMPORTS}/{job['id']}/cancel", token=other_org.token), 404, "import_not_found")
    assert job["id"] not in {j["id"] for j in assert_ok(imp.api.get(IMPORTS, token=other_org.token))["results"]}
    assert imp.final(job["id"])["status"] == "success"
    assert_error(imp.api.get(f"{IMPORTS}/{job['id']}"), 401)
    sql_only = make_token(["*"], allowed_apis=["sql"])["token"]
    r = upload_stream(imp.stack, f"{IMPORTS}?connection=carto_dw&destination={SCHEMA}.tok1", files["csv"], sql_only)
    assert_error(r, 403, "api_not_allowed")
    scoped = make_token([f"{SCHEMA}.tok_ok"], allowed_apis=["imports"])["token"]
    r = upload_stream(imp.stack, f"{IMPORTS}?connection=carto_dw&destination={SCHEMA}.tok_other", files["csv"], scoped)
    assert_error(r, 403, "source_not_granted")
    body = imp.final(imp.upload(files["csv"], f"{SCHEMA}.tok_ok", token=scoped)["id"])
    assert body["status"] == "success"
    r = upload_stream(imp.stack, f"{IMPORTS}?connection=nope&destination=x", files["csv"], imp.admin.token)
    assert_error(r, 404, "connection_not_found")
    r = upload_stream(imp.stack, f"{IMPORTS}?connection=carto_dw&destination=no_such_schema.t", files["csv"], imp.admin.token)
    assert_error(r, 400, "schema_not_found")


def test_upload_size_limit_is_413(imp, tmp_path):
    conn = http.client.HTTPConnection("127.0.0.1", imp.stack.http_port, timeout=30)
    try:
        conn.putrequest("POST", f"{IMPORTS}?connection=carto_dw&destination={SCHEMA}.huge")
        conn.putheader("Authorization", f"Bearer {imp.admin.token}")
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(API_LIMIT + 1))
        conn.endheaders()
        conn.send(b"a,b\n" * 1000)
        r = conn.getresponse()
        resp = h.Resp(r.status, r.msg, r.read())
    finally:
        conn.close()
    assert_error(resp, 413, "payload_too_large")
    # Without a Content-Length (chunked), the limit is enforced while streaming; nothing is kept.
    big = tmp_path / "over.csv"
    with open(big, "wb") as f:
        f.truncate(API_LIMIT + (2 << 20))
    r = upload_stream(imp.stack, f"{IMPORTS}?connection=carto_dw&destination={SCHEMA}.huge", big, imp.admin.token, chunked=True)
    assert r.status == 413, r
    wait_until(lambda: not any((imp.stack.root / "imports" / "uploads").iterdir()), 5)


# --------------------------------------------------------------------------------------------
# hostile input: every one ends in `failure` with a clear message and no side effects


@pytest.mark.parametrize("key,message", [
    ("corrupt_zip", "not a valid zip"),
    ("bomb", "zip bomb"),
    ("lying", "larger than its directory declares"),
    ("many", "entries"),
    ("slip", "escapes its folder"),
    ("abs", "absolute path"),
    ("symlink", "symbolic link"),
    ("xxe", "DOCTYPE"),
    ("vrt", "VRT"),
    ("shp_no_dbf", "missing its .dbf"),
])
def test_bad_files_fail_cleanly(imp, key, message):
    table = f"{SCHEMA}.bad_{key}"
    body = imp.run(imp.files[key], table)
    assert body["status"] == "failure", body
    assert message.lower() in body["error"].lower(), body
    assert body["attempt"] == 1, body  # bad input is not retried
    assert imp.sql(f"SELECT to_regclass('{table}') IS NULL") == "t"
    assert imp.leftovers() == "0"
    assert not Path("/tmp/evil-abs.csv").exists()
    assert not (imp.stack.root / "evil.csv").exists() and not (imp.stack.root / "imports" / "evil.csv").exists()
    assert imp.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'e2e_imp' AND tablename LIKE 'bad_%'") == "0"


def test_xxe_content_never_reaches_the_warehouse_even_without_the_doctype_check(imp, tmp_path):
    """GDAL itself must not resolve entities: the same KML through a zip (KMZ member) is refused too,
    and no imported value anywhere contains /etc/passwd content."""
    kmz = _zip(tmp_path / "xxe.kmz", {"doc.kml": imp.files["xxe"]})
    body = imp.run(kmz, f"{SCHEMA}.xxe_kmz")
    assert body["status"] == "failure" and "DOCTYPE" in body["error"]
    assert imp.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'e2e_imp' AND tablename LIKE 'xxe%'") == "0"


def test_empty_files(imp):
    r = upload_stream(imp.stack, f"{IMPORTS}?connection=carto_dw&destination={SCHEMA}.empty", imp.files["empty"], imp.admin.token)
    assert_error(r, 400, "empty_file")
    body = imp.final(imp.from_url(imp.url_a("empty.bin"), f"{SCHEMA}.empty_url")["id"])
    assert body["status"] == "failure" and "empty" in body["error"], body


@pytest.mark.parametrize("url,why", [
    ("http://127.0.0.1:{b}/points.csv", "loopback"),
    ("http://2130706433:{b}/points.csv", "loopback"),
    ("http://0x7f000001:{b}/points.csv", "loopback"),
    ("http://[::1]:{b}/points.csv", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.1.2.3/x.csv", "private"),
    ("http://[::ffff:127.0.0.1]:{b}/points.csv", "loopback"),
    ("http://127.0.0.1:{a}/redirect?to=http://127.0.0.1:{b}/points.csv", "loopback"),
    ("http://127.0.0.1:{a}/redirect?to=http://[::1]:{b}/points.csv", "loopback"),
])
def test_ssrf_urls_are_refused(imp, url, why):
    url = url.format(a=imp.port_a, b=imp.port_b)
    body = imp.final(imp.from_url(url, f"{SCHEMA}.ssrf")["id"])
    assert body["status"] == "failure", body
    assert why in body["error"] and "refused" in body["error"], body
    assert imp.sql(f"SELECT to_regclass('{SCHEMA}.ssrf') IS NULL") == "t"


def test_url_syntax_is_checked_by_the_api(imp):
    for url in ("file:///etc/passwd", "gopher://x/", "ftp://example.com/a.csv", "http://user:pw@example.com/a.csv", "not a url"):
        r = imp.api.post(IMPORTS, json_body={"connection": "carto_dw", "url": url, "destination": f"{SCHEMA}.u"}, token=imp.admin.token)
        assert_error(r, 400, "invalid_url")


# --------------------------------------------------------------------------------------------
# memory, crashes


def test_big_import_memory_stays_bounded(imp, big_csv):
    worker_pid, api_pid = imp.stack.pid("import-worker"), imp.stack.pid("import-api")
    started = time.monotonic()
    job = imp.upload(big_csv, f"{SCHEMA}.big")
    uploaded = time.monotonic()
    body = imp.final(job["id"], 600)
    loaded = time.monotonic()
    assert body["status"] == "success", body
    assert body["rows"] == BIG_ROWS and imp.rows(f"{SCHEMA}.big") == BIG_ROWS
    worker_hwm = h.kib(h.proc_status(worker_pid)["VmHWM"])
    api_hwm = h.kib(h.proc_status(api_pid)["VmHWM"])
    child = body["result"]["ogr2ogrPeakRssKiB"]
    line = (f"csv_bytes={big_csv.stat().st_size} rows={BIG_ROWS} upload_s={uploaded - started:.1f} import_s={loaded - uploaded:.1f} "
            f"import_api_vmhwm_kib={api_hwm} import_worker_vmhwm_kib={worker_hwm} ogr2ogr_peak_rss_kib={child}")
    print(f"\n[imports] {line}")
    (h.REPO / "test-artifacts").mkdir(exist_ok=True)
    (h.REPO / "test-artifacts" / "imports-rss.txt").write_text(line + "\n")
    assert child < 300 * 1024 and worker_hwm < 200 * 1024 and api_hwm < 200 * 1024


def test_kill_9_mid_import_completes_once_after_restart(imp, big_csv):
    BIN = h.BIN
    table = f"{SCHEMA}.crash"
    job = imp.upload(big_csv, table)
    wait_until(lambda: (imp.status(job["id"]).get("progress") or {}).get("phase") == "loading", 60, 0.1)
    time.sleep(2)
    assert _ogr2ogr_running(job["id"])
    imp.stack.stop_api("import-worker", signal.SIGKILL)
    wait_until(lambda: not _ogr2ogr_running(job["id"]), 10)  # the child dies with its parent (pdeathsig)
    imp.stack.start_worker("import-worker", BIN / "tessera-import-worker",
                           env={"TESSERA_WORKER_LEASE_S": "4", "TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST": f"127.0.0.1:{imp.port_a}"})
    body = imp.final(job["id"], 600)
    assert body["status"] == "success", body
    assert body["attempt"] == 2, body
    # Taken back by the restarted worker at its start, not left to the lease expiry and rescue pass.
    reason = h.metadata(imp.stack, f"SELECT errors->0->>'error' FROM jobs WHERE id = {int(job['id'])}")
    assert "reclaimed by its successor" in reason, reason
    assert imp.rows(table) == BIG_ROWS
    assert imp.sql(f"SELECT count(DISTINCT id) FROM {table}") == str(BIG_ROWS)
    assert imp.leftovers() == "0"
    # One data change, its purge in DataChange's three settle passes (twice would be six).
    assert h.metadata(imp.stack, f"SELECT count(*) FROM jobs WHERE queue = 'cdn' AND payload->>'table' = '{table}'") == "3"
    imports_dir = imp.stack.root / "imports"
    wait_until(lambda: not (imports_dir / "work" / f"job-{job['id']}").exists(), 5)
    assert not any((imports_dir / "uploads").iterdir())


def test_success_enqueues_one_cdn_purge(imp, files):
    """One data change (DataChange.record): a `data_changed` purge at once and its two settle repeats."""
    table = f"{SCHEMA}.cdn_check"
    body = imp.run(files["gpkg"], table)
    assert body["status"] == "success"
    row = h.metadata(imp.stack, f"SELECT string_agg(DISTINCT kind || '|' || (payload->>'connection') || '|' || (payload ? 'account'), ',') "
                                f"|| '|' || count(*) FROM jobs WHERE queue = 'cdn' AND payload->>'table' = '{table}'")
    assert row == "data_changed|carto_dw|true|3", row


def test_disk_full_work_folder_fails_cleanly_and_the_worker_carries_on(imp, files, tmp_path):
    """F14: the worker's temp filesystem is full (a 4 MB tmpfs over imports/work): the archive cannot be
    extracted, the job fails with a 'disk full' reason, nothing is left, the next job still runs."""
    work = imp.stack.root / "imports" / "work"
    wide = tmp_path / "wide.csv"
    with open(wide, "w") as f:
        f.write("id,lat,lon,text\n")
        rnd = random.Random(3)
        for i in range(120_000):
            f.write(f"{i},{rnd.uniform(-80, 80):.5f},{rnd.uniform(-170, 170):.5f},{os.urandom(8).hex()}\n")
    archive = _zip(tmp_path / "wide.zip", {"wide.csv": wide})
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(work)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        body = imp.run(archive, f"{SCHEMA}.diskfull")
        assert body["status"] == "failure" and "disk full" in body["error"], body
        assert imp.sql(f"SELECT to_regclass('{SCHEMA}.diskfull') IS NULL") == "t"
        assert imp.leftovers() == "0"
        assert not any(work.iterdir())
        assert imp.run(files["gpkg"], f"{SCHEMA}.after_full")["status"] == "success"
    finally:
        subprocess.run(["umount", str(work)], check=True)


def test_client_filenames_are_metadata_only(imp, files):
    """B6: a hostile filename is never a path and never reaches a shell; it only names the default table."""
    body = imp.upload(files["csv"], None, filename="../../x;$(id)`uname`.csv")
    assert body["destination"] == "public.x_id_uname", body
    assert body["source"]["filename"] == "x;$(id)`uname`.csv"
    final = imp.final(body["id"])
    assert final["status"] == "success", final
    assert imp.rows("public.x_id_uname") == POINTS
    imp.sql("DROP TABLE public.x_id_uname")
    assert not (imp.stack.root / "x;$(id)`uname`.csv").exists()
    r = upload_stream(imp.stack, f"{IMPORTS}?connection=carto_dw&filename=%2Fvsicurl%2Fhttp%3A%2F%2F127.0.0.1%2Fa.csv"
                                 f"&destination={SCHEMA}.vsi", files["csv"], imp.admin.token)
    assert r.status == 201, r
    final = imp.final(r.json()["id"])
    assert final["status"] == "success" and final["source"]["filename"] == "a.csv", final


def test_an_attempt_that_died_after_its_swap_completes_without_importing_again(imp, files):
    """F3, crash between the warehouse swap and the job's completion: simulated by making a finished
    job runnable again. The marker keyed by the job id makes the rerun record completion only (its
    upload is already gone, so a second import could not even start)."""
    table = f"{SCHEMA}.rerun"
    body = imp.run(files["gpkg"], table)
    assert body["status"] == "success"
    imp.sql(f"INSERT INTO {table} (name) VALUES ('added after the import')")
    job_id = int(body["id"])
    h.metadata(imp.stack, f"UPDATE jobs SET state = 'available', finished_at = NULL, result = NULL, run_at = now() WHERE id = {job_id}")
    h.metadata(imp.stack, f"SELECT pg_notify('tessera_jobs_imports', '{job_id}')")
    again = imp.final(job_id)
    assert again["status"] == "success" and again["rows"] == POINTS, again
    assert again["attempt"] == 2
    assert imp.rows(table) == POINTS + 1  # untouched: not re-imported, not overwritten


def test_an_upload_is_pinned_to_the_node_that_stored_it_and_a_url_import_is_not(imp):
    """Scaled out, only the receiving VM has an uploaded file: its job names that node (the host
    name by default) and only that node's import-worker claims it; a URL import runs anywhere."""
    body = imp.run(imp.files["geojson"], f"{SCHEMA}.pinned_upload")
    assert body["status"] == "success", body
    job = imp.from_url(imp.url_a("points.geojson"), f"{SCHEMA}.unpinned_url")
    assert imp.final(job["id"])["status"] == "success"
    nodes = h.metadata(imp.stack, f"SELECT id || '=' || coalesce(node, '<none>') FROM jobs WHERE id IN ({body['id']}, {job['id']}) ORDER BY id")
    assert nodes.split() == [f"{body['id']}={socket.gethostname()}", f"{job['id']}=<none>"]


def test_with_a_shared_import_dir_an_upload_runs_on_any_node(imp):
    """TESSERA_IMPORT_DIR_SHARED=true (the import directory is NFS on every app VM): the receiving VM
    does not pin the upload, so an import-worker of another node, the only one running, imports it.
    (Pinned, the job would wait for a worker of "vm-a" that never comes, and this test would time out.)"""
    stack, allow = imp.stack, f"127.0.0.1:{imp.port_a}"

    def restart(api_env, worker_env):
        stack.stop_api("import-api")
        stack.start_api("import-api", h.BIN / "tessera-import-api",
                        env={"TESSERA_IMPORT_MAX_BYTES": str(API_LIMIT), "TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST": allow, **api_env})
        stack.stop_api("import-worker")
        stack.start_worker("import-worker", h.BIN / "tessera-import-worker",
                           env={"TESSERA_WORKER_LEASE_S": "4", "TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST": allow, **worker_env})

    restart({"TESSERA_NODE_NAME": "vm-a", "TESSERA_IMPORT_DIR_SHARED": "true"}, {"TESSERA_NODE_NAME": "vm-b"})
    try:
        body = imp.run(imp.files["geojson"], f"{SCHEMA}.shared_dir_upload")
        assert body["status"] == "success", body
        assert imp.rows(f"{SCHEMA}.shared_dir_upload") == POINTS
        assert h.metadata(stack, f"SELECT coalesce(node, '<none>') FROM jobs WHERE id = {body['id']}") == "<none>"
    finally:
        restart({}, {})  # the module fixture's settings, pinned again
