#!/usr/bin/env python3
"""The small files `tessera selftest` imports, written into a directory (tessera-common ships them in
/usr/share/tessera/selftest): the same 25 points as CSV, a zipped Shapefile, a GeoPackage and KML.

    packaging/selftest_fixtures.py DIR

The formats other than CSV are made with ogr2ogr (gdal-bin, from `make deps`) on the build machine,
so the installed selftest needs no tool to make them.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROWS = 25  # SelftestRun.fixtureRows


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "points.csv"
    lines = ["name,value,latitude,longitude"]
    lines += [f"selftest {i},{i},{40 + (i // 5) * 0.01:.4f},{-3 + (i % 5) * 0.01:.4f}" for i in range(ROWS)]
    csv.write_text("\n".join(lines) + "\n")
    made = [csv]
    open_options = ["-oo", "X_POSSIBLE_NAMES=longitude", "-oo", "Y_POSSIBLE_NAMES=latitude", "-a_srs", "EPSG:4326"]

    def ogr2ogr(driver: str, dest: Path, *extra: str) -> None:
        subprocess.run(["ogr2ogr", "-f", driver, str(dest), str(csv), *open_options, *extra, "-nln", "points"],
                       check=True, capture_output=True, text=True)

    for driver, name in (("GPKG", "points.gpkg"), ("KML", "points.kml")):
        (out / name).unlink(missing_ok=True)
        ogr2ogr(driver, out / name)
        made.append(out / name)
    with tempfile.TemporaryDirectory() as tmp:
        ogr2ogr("ESRI Shapefile", Path(tmp) / "points.shp")
        archive = out / "points_shp.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            for part in sorted(Path(tmp).iterdir()):
                z.write(part, part.name)
        made.append(archive)
    return made


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for f in write(Path(sys.argv[1])):
        print(f)
