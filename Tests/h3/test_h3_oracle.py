"""tessera_h3 (packaging/h3) against PyPI's h3, the independent oracle issue 12 asks for.

Run inside the harness (`make test-h3`): STACK_WAREHOUSE_DSN names carto_dw, where the harness
created the extension as the database owner. Inputs are random but seeded (H3_ORACLE_SEED) so a
mismatch can be reproduced; every comparison is batched through one psql session with COPY.
"""
from __future__ import annotations

import math
import os
import random
import subprocess

import h3
import pytest

SEED = int(os.environ.get("H3_ORACLE_SEED", "20261206"))
POINTS = 120_000
POLYGONS_PER_RES = 40
BOUNDARY_TOL = 1e-9


def psql(script: str, check: bool = True) -> subprocess.CompletedProcess:
    dsn = os.environ.get("STACK_WAREHOUSE_DSN")
    if not dsn:
        pytest.fail("STACK_WAREHOUSE_DSN is not set: run through `make test-h3` (Tests/harness/stack.py exec)")
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose",
                        "-d", dsn, "-f", "-"], input=script, capture_output=True, text=True)
    if check and r.returncode != 0:
        pytest.fail(f"psql failed: {r.stderr[-2000:]}")
    return r


def rows(script: str) -> list[list[str]]:
    return [line.split("\t") for line in psql(script).stdout.splitlines() if line]


def copy_script(table: str, columns: str, data: list[tuple]) -> str:
    body = "\n".join("\t".join(str(v) for v in row) for row in data)
    return f"CREATE TEMP TABLE {table} ({columns});\nCOPY {table} FROM STDIN;\n{body}\n\\.\n"


def ring(text: str) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(" "))) for p in text.split(";")]


def test_extension_is_installed():
    assert rows("SELECT extversion FROM pg_extension WHERE extname = 'tessera_h3'") == [["1.0"]]


def test_points_cells_boundaries_centres_parents():
    rnd = random.Random(SEED)
    pts = []
    for i in range(POINTS):
        # Every resolution equally; latitudes uniform on the sphere so polar cells get their share.
        lat = math.degrees(math.asin(rnd.uniform(-1.0, 1.0)))
        lon = rnd.uniform(-180.0, 180.0)
        res = i % 16
        pts.append((i, lon, lat, res, rnd.randint(0, res)))
    out = rows(copy_script("pts", "id int, lon float8, lat float8, res int, pres int", pts) + """
SELECT id, c, carto.h3_fromgeogpoint(ST_SetSRID(ST_MakePoint(lon, lat), 4326), res) = c, carto.h3_resolution(c),
       carto.h3_toparent(c, pres),
       CASE WHEN id % 4 = 0 THEN array_to_string(ARRAY(
           SELECT ST_X(d.geom) || ' ' || ST_Y(d.geom) FROM ST_DumpPoints(carto.h3_boundary(c)) d), ';') END,
       ST_X(carto.h3_center(c)) || ' ' || ST_Y(carto.h3_center(c))
FROM (SELECT *, carto.h3_fromlonglat(lon, lat, res) AS c FROM pts) s ORDER BY id;
""")
    assert len(out) == POINTS
    mismatches = {"cell": 0, "geometry form": 0, "resolution": 0, "parent": 0, "boundary": 0, "centre": 0}
    boundaries = 0
    for (i, lon, lat, res, pres), (rid, cell, geom_same, cres, parent, boundary, centre) in zip(pts, out):
        assert int(rid) == i
        want = h3.latlng_to_cell(lat, lon, res)
        mismatches["cell"] += cell != want
        mismatches["geometry form"] += geom_same != "t"
        mismatches["resolution"] += int(cres) != res
        mismatches["parent"] += parent != h3.cell_to_parent(want, pres)
        clat, clng = h3.cell_to_latlng(want)
        x, y = ring(centre)[0]
        mismatches["centre"] += abs(x - clng) > BOUNDARY_TOL or abs(y - clat) > BOUNDARY_TOL
        if boundary:
            boundaries += 1
            got = ring(boundary)
            exp = [(lng, lat_) for lat_, lng in h3.cell_to_boundary(want)]
            exp.append(exp[0])
            mismatches["boundary"] += len(got) != len(exp) or any(
                abs(a[0] - b[0]) > BOUNDARY_TOL or abs(a[1] - b[1]) > BOUNDARY_TOL for a, b in zip(got, exp))
    print(f"\nH3 oracle: {POINTS} points over resolutions 0-15, {boundaries} boundaries; mismatches {mismatches}")
    assert mismatches == dict.fromkeys(mismatches, 0)


def random_polygon(rnd: random.Random, res: int) -> tuple[list[tuple[float, float]], list[list[tuple[float, float]]]]:
    """A star-shaped ring (lon, lat) sized to hold up to a few thousand cells at res, maybe with a hole."""
    cells = rnd.uniform(0.5, 3000.0)
    area_km2 = cells * h3.average_hexagon_area(res, "km^2")
    radius_deg = min(math.degrees(math.sqrt(area_km2 / math.pi) / 6371.0), 20.0)
    lat0 = rnd.uniform(-70.0, 70.0)
    lon0 = rnd.uniform(-180.0 + 2 * radius_deg / math.cos(math.radians(lat0)) + 1,
                       180.0 - 2 * radius_deg / math.cos(math.radians(lat0)) - 1)
    n = rnd.randint(3, 12)
    angles = sorted(rnd.uniform(0, 2 * math.pi) for _ in range(n))

    def loop(scale: float) -> list[tuple[float, float]]:
        return [(lon0 + scale * r * math.cos(a) / math.cos(math.radians(lat0)), lat0 + scale * r * math.sin(a))
                for a, r in ((a, radius_deg * rnd.uniform(0.6, 1.0)) for a in angles)]

    outer = loop(1.0)
    holes = [loop(0.3)[::-1]] if rnd.random() < 0.3 else []
    return outer, holes


def wkt(outer, holes) -> str:
    rings = [r + [r[0]] for r in [outer, *holes]]
    return "POLYGON(" + ",".join("(" + ",".join(f"{x!r} {y!r}" for x, y in r) + ")" for r in rings) + ")"


def test_polyfill_matches_polygon_to_cells():
    rnd = random.Random(SEED + 1)
    polys = []
    for res in range(16):
        for _ in range(POLYGONS_PER_RES):
            outer, holes = random_polygon(rnd, res)
            polys.append((len(polys), res, outer, holes))
    data = [(pid, res, "SRID=4326;" + wkt(outer, holes)) for pid, res, outer, holes in polys]
    out = rows(copy_script("polys", "id int, res int, g geometry", data) + """
SELECT id, array_to_string(carto.h3_polyfill(g, res, 100000), ',') FROM polys ORDER BY id;
""")
    mismatched, total = [], 0
    for (pid, res, outer, holes), (rid, cells) in zip(polys, out):
        assert int(rid) == pid
        got = sorted(cells.split(",")) if cells else []
        want = sorted(h3.polygon_to_cells(h3.LatLngPoly([(y, x) for x, y in outer],
                                                        *[[(y, x) for x, y in h] for h in holes]), res))
        total += len(want)
        if got != want:
            mismatched.append((pid, res, len(got), len(want)))
    print(f"\nH3 oracle: {len(polys)} polygons over resolutions 0-15, {total} cells; mismatched polygons {mismatched}")
    assert len(out) == len(polys) and total > 100_000
    assert mismatched == []


def test_polyfill_bound_is_exact_and_says_so():
    poly = "SRID=4326;POLYGON((-122.5 37.7,-122.3 37.7,-122.3 37.8,-122.5 37.8,-122.5 37.7))"
    want = len(h3.polygon_to_cells(h3.LatLngPoly([(37.7, -122.5), (37.7, -122.3), (37.8, -122.3), (37.8, -122.5)]), 9))
    assert rows(f"SELECT cardinality(carto.h3_polyfill('{poly}'::geometry, 9, {want}))") == [[str(want)]]
    r = psql(f"SELECT carto.h3_polyfill('{poly}'::geometry, 9, {want - 1})", check=False)
    assert r.returncode != 0
    assert "TH301" in r.stderr and f"more than {want - 1} cells" in r.stderr


def test_children_match():
    rnd = random.Random(SEED + 2)
    cases = []
    for i in range(3000):
        res = rnd.randint(0, 15)
        cell = h3.latlng_to_cell(rnd.uniform(-85, 85), rnd.uniform(-180, 180), res)
        cases.append((i, cell, min(15, res + rnd.randint(0, 3) if res > 2 else res + rnd.randint(0, 2))))
    out = rows(copy_script("kids", "id int, c text, res int", cases) + """
SELECT id, array_to_string(carto.h3_tochildren(c, res), ',') FROM kids ORDER BY id;
""")
    bad = [(i, c, r) for (i, c, r), (_, got) in zip(cases, out) if sorted(got.split(",")) != sorted(h3.cell_to_children(c, r))]
    assert len(out) == len(cases) and bad == []
    r = psql("SELECT carto.h3_tochildren('8001fffffffffff', 5, 100)", check=False)
    assert r.returncode != 0 and "TH301" in r.stderr and "more than 100 cells" in r.stderr


def test_validity_of_malformed_ids():
    rnd = random.Random(SEED + 3)
    ids = set()
    for _ in range(20000):
        cell = h3.latlng_to_cell(rnd.uniform(-90, 90), rnd.uniform(-180, 180), rnd.randint(0, 15))
        n = h3.str_to_int(cell)
        ids.add(cell)
        ids.add(format(n ^ (1 << rnd.randrange(64)), "x"))        # one bit flipped: mode, resolution, digits
        ids.add(cell[: rnd.randint(0, len(cell) - 1)])              # truncated
        ids.add(cell.upper())
        ids.add(format(rnd.getrandbits(64), "x"))
    ids.discard("")
    data = sorted(ids)
    out = rows(copy_script("ids", "c text", [(c,) for c in data]) + "SELECT c, carto.h3_isvalid(c) FROM ids ORDER BY c COLLATE \"C\";")
    got = {c: v == "t" for c, v in out}
    wrong = [c for c in data if got[c] != h3.is_valid_cell(c)]
    valid = sum(got.values())
    print(f"\nH3 oracle: {len(data)} ids ({valid} valid, {len(data) - valid} not); disagreements {len(wrong)}")
    assert len(got) == len(data) and wrong == []
    # Stricter than h3-py's int(s, 16) on purpose: CARTO ids are bare hex, so no prefix, sign or blanks.
    assert rows("SELECT carto.h3_isvalid(''), carto.h3_isvalid('zz'), carto.h3_isvalid('0x8928308280fffff'), "
                "carto.h3_isvalid(' 8928308280fffff'), carto.h3_isvalid('fffffffffffffffff')") == [["f"] * 5]


def test_bad_input_errors_are_clear():
    for sql, sqlstate, text in [
        ("SELECT carto.h3_fromlonglat(0, 0, 16)", "22023", "resolution 16 is out of range"),
        ("SELECT carto.h3_boundary('zz')", "22P02", "expected a hexadecimal string"),
        ("SELECT carto.h3_boundary('8928308280fffff0')", "22023", "invalid H3 cell id"),
        ("SELECT carto.h3_toparent('8928308280fffff', 10)", "22023", "finer than the cell's resolution"),
        ("SELECT carto.h3_polyfill('SRID=4326;LINESTRING(0 0,1 1)'::geometry, 5)", "22023", "polygon or multipolygon"),
    ]:
        r = psql(sql, check=False)
        assert r.returncode != 0 and sqlstate in r.stderr and text in r.stderr, (sql, r.stderr)
    # A point without coordinates has no cell instead of failing a whole aggregation.
    assert rows("SELECT carto.h3_fromlonglat('NaN', 0, 5) IS NULL") == [["t"]]


def test_functions_do_not_depend_on_the_callers_search_path():
    # Tile and widget SQL runs with whatever search_path the warehouse role has; the wrappers bind
    # PostGIS and their C functions when the extension is created.
    query = ("SELECT carto.h3_fromgeogpoint('SRID=4326;POINT(2.5 48.5)'::public.geometry, 7), "
             "public.ST_SRID(carto.h3_boundary(carto.h3_fromlonglat(2.5, 48.5, 7))), "
             "cardinality(carto.h3_polyfill(public.ST_Buffer(carto.h3_center(carto.h3_fromlonglat(2.5, 48.5, 5)), 0.1), 7))")
    bare = rows(f"SET search_path = pg_catalog;\n{query}")
    assert bare == rows(query)
    assert bare[0][:2] == [h3.latlng_to_cell(48.5, 2.5, 7), "4326"] and int(bare[0][2]) > 0


def test_geometry_forms_beyond_plain_points():
    # Plain 4326 points take the C fast path; these take PostGIS's (transform, Z, empty, errors).
    want = h3.latlng_to_cell(48.5, 2.5, 7)
    assert rows("SELECT carto.h3_fromgeogpoint(ST_Transform('SRID=4326;POINT(2.5 48.5)'::geometry, 3857), 7), "
                "carto.h3_fromgeogpoint('SRID=4326;POINT Z (2.5 48.5 10)'::geometry, 7), "
                "carto.h3_fromgeogpoint('POINT(2.5 48.5)'::geometry, 7), "
                "carto.h3_fromgeogpoint('SRID=4326;POINT EMPTY'::geometry, 7) IS NULL") == [[want, want, want, "t"]]
    # The fast path must really answer stored points (short varlena headers) and literals, or the
    # aggregation silently pays for ST_X/ST_Y again.
    assert rows("CREATE TEMP TABLE fp AS SELECT 'SRID=4326;POINT(2.5 48.5)'::geometry AS g;\n"
                "SELECT carto._h3_point_to_cell(g, 7) = carto.h3_fromlonglat_int(2.5, 48.5, 7), "
                "carto._h3_point_to_cell('SRID=4326;POINT(2.5 48.5)'::geometry, 7) IS NOT NULL, "
                "carto._h3_point_to_cell('SRID=3857;POINT(2.5 48.5)'::geometry, 7) IS NULL FROM fp") == [["t", "t", "t"]]
    r = psql("SELECT carto.h3_fromgeogpoint('SRID=4326;LINESTRING(0 0,1 1)'::geometry, 7)", check=False)
    assert r.returncode != 0 and "POINT" in r.stderr
