"""Raster sources as @carto/api-client's rasterSource and deck.gl's RasterTileLayer use them: a GeoTIFF
made here with GDAL is imported through the Imports API, then the handshake, TileJSON (raster_metadata)
and a binary raster tile are fetched; the tile is decoded as CartoRasterTileLoader does and its pixels
are checked against the source grid and against plain PostGIS SQL."""
from __future__ import annotations

import json
import math
import struct
import subprocess
from pathlib import Path

import pytest

import helpers as h
from helpers import assert_error, assert_ok
from test_imports import IMPORTS, upload_stream
from test_maps_api import CONN, Maps

TABLE = "public.e2e_dem"
COLS, ROWS, WEST, NORTH, CELL, NODATA = 16, 12, 2.0, 41.6, 0.05, -9999


def value(row: int, col: int) -> int:
    return NODATA if (row, col) == (0, 0) else 100 * row + col


@pytest.fixture(scope="module")
def dem(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("raster")
    lines = [f"ncols {COLS}", f"nrows {ROWS}", f"xllcorner {WEST}", f"yllcorner {NORTH - ROWS * CELL}",
             f"cellsize {CELL}", f"NODATA_value {NODATA}"]
    lines += [" ".join(str(value(r, c)) for c in range(COLS)) for r in range(ROWS)]
    (d / "dem.asc").write_text("\n".join(lines) + "\n")
    subprocess.run(["gdal_translate", "-q", "-a_srs", "EPSG:4326", "-ot", "Int16", "-of", "GTiff", str(d / "dem.asc"),
                    str(d / "dem.tif")], check=True)
    (d / "not_raster.tif").write_text("name,value\na,1\n")
    return d


def run_import(stack, admin, path: Path, destination: str, filename: str) -> dict:
    r = upload_stream(stack, f"{IMPORTS}?" + h.encode_query({"connection": CONN, "destination": destination,
                                                             "filename": filename, "overwrite": True}), path, admin.token)
    assert r.status == 201, r
    job = r.json()["id"]
    state = {}

    def done():
        state.update(assert_ok(h.Api(stack).get(f"{IMPORTS}/{job}", token=admin.token)))
        return state["status"] in ("success", "failure", "cancelled")

    h.wait_until(done, 120, 0.2)
    return state


@pytest.fixture(scope="module")
def maps(stack, admin, dem):
    m = Maps(stack)
    body = run_import(stack, admin, dem / "dem.tif", TABLE, "dem.tif")
    assert body["status"] == "success", body.get("error")
    return m


def decode_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, pos


def decode_tile(buf: bytes) -> tuple[int, dict]:
    """CartoRasterTileLoader's reading: Tile{1: blockSize, 2: Band{1: name, 2: type, 3: data}}."""
    types = {"uint8": "B", "int8": "b", "uint16": "H", "int16": "h", "uint32": "I", "int32": "i", "float32": "f", "float64": "d"}

    def fields(data: bytes):
        pos = 0
        while pos < len(data):
            key, pos = decode_varint(data, pos)
            if key & 7 == 0:
                v, pos = decode_varint(data, pos)
                yield key >> 3, v
            else:
                assert key & 7 == 2, key
                n, pos = decode_varint(data, pos)
                yield key >> 3, data[pos:pos + n]
                pos += n

    block, bands = 0, {}
    for field, v in fields(buf):
        if field == 1:
            block = v
        elif field == 2:
            name = typ = None
            for f, bv in fields(v):
                if f == 1:
                    name = bv.decode()
                elif f == 2:
                    typ = bv.decode()
                elif f == 3:
                    assert typ is not None, "type must precede data"
                    fmt = types[typ]
                    bands[name] = (typ, struct.unpack(f"<{len(bv) // struct.calcsize(fmt)}{fmt}", bv))
    return block, bands


def pixel(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def handshake(maps: Maps, **params) -> dict:
    return maps.source("raster", {"name": TABLE, **params})


def test_import_makes_a_quadbin_blocked_raster_table(stack, maps):
    cols = h.warehouse(stack, "SELECT string_agg(column_name || ':' || udt_name, ',' ORDER BY ordinal_position) "
                              "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'e2e_dem'")
    assert cols == "block:int8,rast:raster"
    # Every block is exactly its quadbin tile, 256×256 pixels in EPSG:3857.
    bad = h.warehouse(stack, f"""SELECT count(*) FROM {TABLE}
        WHERE ST_Width(rast) <> 256 OR ST_Height(rast) <> 256 OR ST_SRID(rast) <> 3857
           OR NOT ST_Equals(ST_Envelope(rast), ST_Transform(carto.quadbin_boundary(block), 3857)) AND
              ST_HausdorffDistance(ST_Envelope(rast), ST_Transform(carto.quadbin_boundary(block), 3857)) > 0.01""")
    assert bad == "0"
    assert int(h.warehouse(stack, f"SELECT count(*) FROM {TABLE}")) >= 1


def test_handshake_tilejson_and_band_metadata(maps):
    hs = handshake(maps)
    assert hs["tilejson"]["url"][0].startswith(maps.stack.base_url + "/api/v3/maps/carto_dw/raster?")
    assert any(c["name"] == "band_1" for c in hs["schema"])
    tj = maps.tilejson(hs)
    assert tj["scheme"] == "quadbin"
    assert "{i}" in tj["tiles"][0] and "formatTiles=binary" in tj["tiles"][0]  # the client's getTileFormat reads this
    md = tj["raster_metadata"]
    # Overviews go down to one block for the world: every zoom from 0 to the native one has tiles.
    assert md["block_resolution"] == tj["maxzoom"] == md["maxresolution"] and tj["minzoom"] == md["minresolution"] == 0
    assert md["pixel_resolution"] == md["block_resolution"] + 8
    assert md["block_width"] == md["block_height"] == 256
    [band] = md["bands"]
    assert band["name"] == "band_1" and band["type"] == "int16" and band["nodata"] == NODATA
    source = [value(r, c) for r in range(ROWS) for c in range(COLS) if value(r, c) != NODATA]
    # Pixels are finer than source cells, so each cell is repeated: min and max are exact, counts are larger.
    assert band["stats"]["min"] == min(source) and band["stats"]["max"] == max(source)
    assert band["stats"]["count"] > len(source)
    w, s, e, n = md["bounds"]
    assert w <= WEST and e >= WEST + COLS * CELL and s <= NORTH - ROWS * CELL and n >= NORTH


def test_tile_pixels_match_the_source_grid_and_postgis(stack, maps):
    tj = maps.tilejson(handshake(maps))
    md = tj["raster_metadata"]
    zp, zb = md["pixel_resolution"], md["block_resolution"]
    checked = 0
    for r, c in [(0, 0), (0, 1), (3, 7), (5, 15), (11, 0), (11, 15), (6, 6)]:
        lon, lat = WEST + CELL * (c + 0.5), NORTH - CELL * (r + 0.5)
        px, py = pixel(lon, lat, zp)
        cell = h.warehouse(stack, f"SELECT lpad(to_hex(carto.quadbin_fromzxy({zb}, {px >> 8}, {py >> 8})), 16, '0')")
        resp = maps.api.get(maps.local(tj["tiles"][0]).replace("{i}", cell), token=maps.star)
        assert resp.status == 200, resp
        block, bands = decode_tile(resp.body)
        assert block == 256
        typ, values = bands["band_1"]
        assert typ == "int16" and len(values) == 256 * 256
        got = values[(py & 255) * 256 + (px & 255)]
        assert got == value(r, c), (r, c, got)
        # The same pixel through PostGIS (nodata reads as NULL there).
        sql = h.warehouse(stack, f"""SELECT coalesce(ST_Value(rast, ST_Transform(ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326), 3857))::int::text, 'null')
                                     FROM {TABLE} WHERE block = x'{cell}'::bigint""")
        assert sql == ("null" if value(r, c) == NODATA else str(value(r, c)))
        checked += 1
    assert checked == 7


def test_tiles_outside_the_block_resolution_or_data_are_empty(stack, maps):
    tj = maps.tilejson(handshake(maps))
    zb = tj["raster_metadata"]["block_resolution"]
    template = maps.local(tj["tiles"][0])
    other = h.warehouse(stack, f"SELECT lpad(to_hex(carto.quadbin_fromzxy({zb - 1}, 0, 0)), 16, '0')")
    assert maps.api.get(template.replace("{i}", other), token=maps.star).status == 204
    far = h.warehouse(stack, f"SELECT lpad(to_hex(carto.quadbin_fromzxy({zb}, 0, 0)), 16, '0')")
    assert maps.api.get(template.replace("{i}", far), token=maps.star).status == 204
    assert_error(maps.api.get(template.replace("{i}", "zz"), token=maps.star), 400, "invalid_tile")


def test_band_stats_and_a_missing_band(stack, maps):
    body = assert_ok(maps.api.get(f"/api/v3/stats/{CONN}/{TABLE}/band_1", token=maps.star))
    assert body["min"] == 1 and body["max"] == 100 * (ROWS - 1) + COLS - 1
    err = assert_error(maps.api.get(f"/api/v3/stats/{CONN}/{TABLE}/band_9", token=maps.star), 400, "invalid_parameter")
    assert "band_9" in err["error"] and "attribute" in err["error"]


def test_bad_raster_inputs(stack, admin, maps, dem):
    body = run_import(stack, admin, dem / "not_raster.tif", "public.e2e_not_raster", "not_raster.tif")
    assert body["status"] == "failure"
    assert "not a raster" in body["error"], body
    assert h.warehouse(stack, "SELECT to_regclass('public.e2e_not_raster') IS NULL") == "t"
    # A vector table is no raster source; a missing table is a 404; name is required.
    h.warehouse(stack, "DROP TABLE IF EXISTS e2e_vec; CREATE TABLE e2e_vec (id int)")
    assert_error(maps.handshake("raster", {"name": "public.e2e_vec"}, maps.star), 400, "invalid_source")
    assert_error(maps.handshake("raster", {"name": "public.e2e_nothing"}, maps.star), 404)
    assert_error(maps.handshake("raster", {}, maps.star), 400, "missing_parameter")


def test_two_band_float_raster_keeps_band_order_types_and_nan_nodata(stack, admin, maps, tmp_path):
    # Two Float32 bands without a declared nodata (NaN is then the nodata), over a different place.
    west, north, cell, n = -3.8, 40.5, 0.02, 10
    for band, f in (("a", lambda r, c: r + c / 10), ("b", lambda r, c: -(r * 10 + c) - 0.5)):
        lines = [f"ncols {n}", f"nrows {n}", f"xllcorner {west}", f"yllcorner {north - n * cell}", f"cellsize {cell}"]
        lines += [" ".join(str(f(r, c)) for c in range(n)) for r in range(n)]
        (tmp_path / f"{band}.asc").write_text("\n".join(lines) + "\n")
    subprocess.run(["gdalbuildvrt", "-q", "-separate", str(tmp_path / "ab.vrt"), str(tmp_path / "a.asc"), str(tmp_path / "b.asc")],
                   check=True)
    subprocess.run(["gdal_translate", "-q", "-a_srs", "EPSG:4326", "-ot", "Float32", str(tmp_path / "ab.vrt"),
                    str(tmp_path / "ab.tif")], check=True)
    body = run_import(stack, admin, tmp_path / "ab.tif", "public.e2e_two_bands", "ab.tif")
    assert body["status"] == "success", body.get("error")
    tj = maps.tilejson(maps.source("raster", {"name": "public.e2e_two_bands"}))
    md = tj["raster_metadata"]
    assert [(b["name"], b["type"], b["nodata"]) for b in md["bands"]] == [("band_1", "float32", "nan"), ("band_2", "float32", "nan")]
    zp, zb = md["pixel_resolution"], md["block_resolution"]
    for r, c in [(0, 0), (4, 7), (9, 9)]:
        lon, lat = west + cell * (c + 0.5), north - cell * (r + 0.5)
        px, py = pixel(lon, lat, zp)
        cell_id = h.warehouse(stack, f"SELECT lpad(to_hex(carto.quadbin_fromzxy({zb}, {px >> 8}, {py >> 8})), 16, '0')")
        resp = maps.api.get(maps.local(tj["tiles"][0]).replace("{i}", cell_id), token=maps.star)
        assert resp.status == 200, resp
        _, bands = decode_tile(resp.body)
        assert list(bands) == ["band_1", "band_2"]
        i = (py & 255) * 256 + (px & 255)
        assert bands["band_1"][1][i] == pytest.approx(r + c / 10, abs=1e-5)
        assert bands["band_2"][1][i] == pytest.approx(-(r * 10 + c) - 0.5, abs=1e-5)
    # Padding outside the source is NaN (the nodata), in every block.
    _, bands = decode_tile(maps.api.get(maps.local(tj["tiles"][0]).replace("{i}", cell_id), token=maps.star).body)
    assert any(math.isnan(v) for v in bands["band_1"][1])


def test_band_filters_mask_pixels_and_an_unknown_band_is_a_400_naming_filters(stack, maps):
    flt = {"band_1": {"between": {"values": [[300, 500]]}}}
    tj = maps.tilejson(handshake(maps, filters=json.dumps(flt)))
    md = tj["raster_metadata"]
    zp, zb = md["pixel_resolution"], md["block_resolution"]
    for r, c in [(2, 5), (3, 7), (5, 0), (9, 9)]:
        lon, lat = WEST + CELL * (c + 0.5), NORTH - CELL * (r + 0.5)
        px, py = pixel(lon, lat, zp)
        cell = h.warehouse(stack, f"SELECT lpad(to_hex(carto.quadbin_fromzxy({zb}, {px >> 8}, {py >> 8})), 16, '0')")
        _, bands = decode_tile(maps.api.get(maps.local(tj["tiles"][0]).replace("{i}", cell), token=maps.star).body)
        kept = 300 <= value(r, c) <= 500
        assert bands["band_1"][1][(py & 255) * 256 + (px & 255)] == (value(r, c) if kept else NODATA), (r, c)
    err = assert_error(maps.handshake("raster", {"name": TABLE, "filters": json.dumps({"band_9": {"in": {"values": [1]}}})},
                                      maps.star), 400, "invalid_filter")
    assert err["error"].startswith("filters:") and "band_9" in err["error"]
