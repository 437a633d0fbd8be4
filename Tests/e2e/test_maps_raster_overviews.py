"""Raster overviews: a large GeoTIFF (8192×8192 pixels) imported through the Imports API serves every zoom
from 0 to its native one. The file is made here in EPSG:3857 on the quadbin pixel grid, so native tiles
must hold GDAL's own reading of the file pixel for pixel, and each overview pixel the mean of the native
pixels under it (each level averages the 2×2 pixels of the one below; integer bands round it)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import helpers as h
from helpers import assert_ok
from test_maps_api import CONN, Maps
from test_maps_raster import decode_tile, run_import

TABLE = "public.e2e_big_dem"
SIZE, PIXEL_RES, NODATA = 8192, 20, 255
BLOCK_RES = PIXEL_RES - 8
X0, Y0 = 2048 * 256, 1536 * 256  # the source's NW pixel at PIXEL_RES: aligned to every overview level
WORLD = 40075016.68557849


def col_part(col):
    return (np.asarray(col) // 16) % 127


def row_part(row):
    return (np.asarray(row) // 64) % 127


def value(row: int, col: int) -> int:
    return int(1 + col_part(col) + row_part(row))


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("big_raster")
    grid = (1 + row_part(np.arange(SIZE))[:, None] + col_part(np.arange(SIZE))[None, :]).astype(np.uint8)
    grid.tofile(d / "big.bil")
    (d / "big.hdr").write_text(f"NROWS {SIZE}\nNCOLS {SIZE}\nNBANDS 1\nNBITS 8\nPIXELTYPE UNSIGNEDINT\nBYTEORDER I\nLAYOUT BIL\n")
    px = WORLD / 2 ** PIXEL_RES
    ulx, uly = X0 * px - WORLD / 2, WORLD / 2 - Y0 * px
    subprocess.run(["gdal_translate", "-q", "-of", "GTiff", "-co", "COMPRESS=DEFLATE", "-co", "TILED=YES", "-a_srs", "EPSG:3857",
                    "-a_ullr", repr(ulx), repr(uly), repr(ulx + SIZE * px), repr(uly - SIZE * px), "-a_nodata", str(NODATA),
                    str(d / "big.bil"), str(d / "big.tif")], check=True)
    return d


@pytest.fixture(scope="module")
def maps(stack, admin, big):
    body = run_import(stack, admin, big / "big.tif", TABLE, "big.tif")
    assert body["status"] == "success", body.get("error")
    return Maps(stack)


def tilejson(maps: Maps) -> dict:
    return maps.tilejson(maps.source("raster", {"name": TABLE}))


def block(maps: Maps, stack, tj: dict, z: int, x: int, y: int):
    cell = h.warehouse(stack, f"SELECT lpad(to_hex(carto.quadbin_fromzxy({z}, {x}, {y})), 16, '0')")
    resp = maps.api.get(maps.local(tj["tiles"][0]).replace("{i}", cell), token=maps.star)
    return cell, resp


def gdal_value(path: Path, row: int, col: int) -> int:
    out = subprocess.run(["gdallocationinfo", "-valonly", str(path), str(col), str(row)], check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def test_tilejson_spans_zoom_0_to_native_and_stats_are_the_native_pixels(maps):
    tj = tilejson(maps)
    md = tj["raster_metadata"]
    assert md["block_resolution"] == BLOCK_RES and md["pixel_resolution"] == PIXEL_RES
    assert (tj["minzoom"], tj["maxzoom"]) == (0, BLOCK_RES) == (md["minresolution"], md["maxresolution"])
    [band] = md["bands"]
    assert band["type"] == "uint8" and band["nodata"] == NODATA
    rows, cols = row_part(np.arange(SIZE)).astype(np.int64), col_part(np.arange(SIZE)).astype(np.int64)
    total = SIZE * SIZE + SIZE * int(rows.sum()) + SIZE * int(cols.sum())
    stats = band["stats"]
    assert stats["count"] == SIZE * SIZE  # overview pixels are not counted again
    assert (stats["min"], stats["max"]) == (1, 253)
    assert stats["sum"] == total
    assert stats["mean"] == pytest.approx(total / SIZE ** 2, rel=1e-12)


def test_native_tiles_hold_gdals_reading_of_the_file(stack, maps, big):
    tj = tilejson(maps)
    for row, col in [(0, 0), (1, 17), (255, 256), (4000, 5000), (8191, 8191), (6000, 123)]:
        px, py = X0 + col, Y0 + row
        _, resp = block(maps, stack, tj, BLOCK_RES, px >> 8, py >> 8)
        assert resp.status == 200, resp
        size, bands = decode_tile(resp.body)
        typ, values = bands["band_1"]
        assert size == 256 and typ == "uint8"
        got = values[(py & 255) * 256 + (px & 255)]
        assert got == gdal_value(big / "big.tif", row, col) == value(row, col), (row, col)


def test_every_zoom_has_a_tile_and_overview_pixels_are_the_mean_of_the_native_ones(stack, maps):
    tj = tilejson(maps)
    rows, cols = row_part(np.arange(SIZE)).astype(np.float64), col_part(np.arange(SIZE)).astype(np.float64)
    for z in range(0, BLOCK_RES):
        k = BLOCK_RES - z  # each overview pixel covers 2^k × 2^k native pixels
        for row, col in [(0, 0), (4000, 5000), (8191, 8191)]:
            px, py = (X0 + col) >> k, (Y0 + row) >> k
            cell, resp = block(maps, stack, tj, z, px >> 8, py >> 8)
            assert resp.status == 200, (z, resp)
            _, bands = decode_tile(resp.body)
            got = bands["band_1"][1][(py & 255) * 256 + (px & 255)]
            # The native pixels under this one, clipped to the file (outside it is nodata, left out of the mean).
            c0, r0 = max(0, (px << k) - X0), max(0, (py << k) - Y0)
            c1, r1 = min(SIZE, ((px + 1) << k) - X0), min(SIZE, ((py + 1) << k) - Y0)
            mean = 1 + rows[r0:r1].mean() + cols[c0:c1].mean()
            assert abs(got - mean) <= 0.5, (z, row, col, got, mean)
            # PostGIS reads the same overview pixel from the stored block.
            x = ((px + 0.5) * WORLD / 2 ** (PIXEL_RES - k)) - WORLD / 2
            y = WORLD / 2 - (py + 0.5) * WORLD / 2 ** (PIXEL_RES - k)
            sql = h.warehouse(stack, f"SELECT ST_Value(rast, ST_SetSRID(ST_MakePoint({x}, {y}), 3857))::int FROM {TABLE} "
                                     f"WHERE block = x'{cell}'::bigint")
            assert sql == str(got), (z, sql, got)
    # Past the native zoom there is nothing (the client over-zooms the native tiles).
    _, resp = block(maps, stack, tj, BLOCK_RES + 1, (X0 >> 7), (Y0 >> 7))
    assert resp.status == 204


def test_each_level_is_one_row_per_block_holding_data(stack, maps):
    counts = h.warehouse(stack, f"SELECT string_agg(z || ':' || n, ',' ORDER BY z) FROM (SELECT (carto.quadbin_tozxy(block)).z, count(*) n "
                                f"FROM {TABLE} GROUP BY 1) s")
    # 32×32 native blocks; each overview level halves that, down to one block.
    expected = ",".join(f"{z}:{max(1, (32 >> (BLOCK_RES - z))) ** 2}" for z in range(BLOCK_RES + 1))
    assert counts == expected
    md = tilejson(maps)["raster_metadata"]
    assert md["num_blocks"] == int(h.warehouse(stack, f"SELECT count(*) FROM {TABLE}"))
    stats = assert_ok(maps.api.get(f"/api/v3/stats/{CONN}/{TABLE}/band_1", token=maps.star))
    assert (stats["min"], stats["max"], stats["count"]) == (1, 253, SIZE * SIZE)
