#!/usr/bin/env python3
"""Imports API vs plain ogr2ogr on the same generated files, in one run.

Generates a CSV (lon/lat columns) and a GeoJSON FeatureCollection of about --size each, and from the CSV
(with ogr2ogr, untimed) a GeoPackage and a zipped Shapefile; then loads each (a) through the Imports API —
a streamed upload through nginx to tessera-import-api, then the tessera-import-worker (GDAL -> COPY into a
staging table -> swap) — and (b) with plain `ogr2ogr -f PostgreSQL` (PG_USE_COPY=YES) of the same file
into the same warehouse (the zip through /vsizip/). Prints MB/s and the ratio ogr2ogr time / Imports API
time, both end to end (upload + queue + load) and for the worker's job alone; the CPU seconds each spent
(plain: ogr2ogr + PostgreSQL; job: worker + its GDAL children + PostgreSQL), less sensitive to other load
on the machine than wall time, split by process (PostgreSQL's part apart) beside the CPU of GDAL opening the
file alone (`ogrinfo -so`: the schema pass GDAL makes before the load reads the file again; for GeoJSON a
whole parse); and peak RSS: the
import-worker's own (VmHWM, reset before each import), its GDAL child's (ogr2ogr, from wait4), their sum,
and plain ogr2ogr's. Every loaded table is VACUUM ANALYZEd untimed before the next load, so that autovacuum
never scans one side's table during the other side's measurement.

usage: bench/imports [--size 100M|1G] [--formats csv,geojson,gpkg,shpzip] [--bin .build/release] [--json]
  --size 1G is the by-hand bounded-memory check (not CI): it needs several GB of free disk, checked first.
  --json prints one JSON object with every number on the last line (bench/compare reads it).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import time
import shutil
import urllib.parse
import zipfile
from pathlib import Path

from benchlib import DEFAULT_BIN, require, throwaway_stack, tool, vmhwm_kib
from stack import ADMIN_EMAIL, Stack

CATEGORIES = ["city", "town", "village", "hamlet"]


def rows(seed: int):
    """Deterministic rows: id, name, category, value, lon, lat."""
    rnd = random.Random(seed)
    i = 0
    while True:
        i += 1
        yield (i, f"place {i}", CATEGORIES[i % 4], round(rnd.uniform(0, 1000), 3),
               round(rnd.uniform(-180, 180), 6), round(rnd.uniform(-85, 85), 6))


def generate(path: Path, fmt: str, size: int) -> int:
    """Writes about `size` bytes; returns the row count."""
    n = 0
    with open(path, "w", buffering=1 << 20) as f:
        if fmt == "csv":
            f.write("id,name,category,value,lon,lat\n")
        else:
            f.write('{"type":"FeatureCollection","features":[\n')
        written, batch = 0, []
        for r in rows(42):
            if fmt == "csv":
                line = f"{r[0]},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]}\n"
            else:
                line = (("," if n else "") + f'{{"type":"Feature","properties":{{"id":{r[0]},"name":"{r[1]}","category":"{r[2]}",'
                        f'"value":{r[3]}}},"geometry":{{"type":"Point","coordinates":[{r[4]},{r[5]}]}}}}\n')
            batch.append(line)
            written += len(line)
            n += 1
            if len(batch) == 10000:
                f.write("".join(batch))
                batch = []
                if written >= size:
                    break
        f.write("".join(batch))
        if fmt != "csv":
            f.write("]}\n")
    return n


def parse_size(text: str) -> int:
    """"100M", "1G", "512k" or plain bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


CSV_OPEN = ["-oo", "X_POSSIBLE_NAMES=lon", "-oo", "Y_POSSIBLE_NAMES=lat", "-oo", "AUTODETECT_TYPE=YES"]


def convert(csv: Path, fmt: str) -> Path:
    """A GeoPackage or zipped Shapefile of the CSV's rows (not timed)."""
    if fmt == "gpkg":
        out = csv.with_name("bench.gpkg")
        subprocess.run(["ogr2ogr", "-f", "GPKG", str(out), str(csv), "-nln", "bench", "-a_srs", "EPSG:4326", *CSV_OPEN],
                       check=True, stdout=subprocess.DEVNULL)
        return out
    shp_dir = csv.parent / "shp"
    shutil.rmtree(shp_dir, ignore_errors=True)
    shp_dir.mkdir()
    subprocess.run(["ogr2ogr", "-f", "ESRI Shapefile", str(shp_dir / "bench.shp"), str(csv), "-nln", "bench", "-a_srs", "EPSG:4326",
                    *CSV_OPEN], check=True, stdout=subprocess.DEVNULL)
    out = csv.with_name("bench.zip")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True) as z:
        for part in sorted(shp_dir.iterdir()):
            z.write(part, part.name)
    shutil.rmtree(shp_dir)
    return out


def cpu_with_children(pid: int) -> float:
    """User + system CPU of a process and of its children it has waited for (ogr2ogr, unzip...)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def pg_cpu(stack: Stack) -> float:
    """CPU of the stack's PostgreSQL: the postmaster with its reaped backends, plus the live ones."""
    postmaster = int((stack.pg_data / "postmaster.pid").read_text().split()[0])
    total = cpu_with_children(postmaster)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def backends(stack: Stack) -> int:
    """How many children the postmaster has now (its backends and auxiliary processes)."""
    postmaster = int((stack.pg_data / "postmaster.pid").read_text().split()[0])
    count = 0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    count += 1
            except OSError:
                pass
    return count


def wait_backends(stack: Stack, at_most: int) -> None:
    """Waits (up to 10 s) until a finished client's backend has exited and been reaped: its CPU only then
    reaches the postmaster's reaped-children total that pg_cpu reads."""
    deadline = time.monotonic() + 10
    while backends(stack) > at_most and time.monotonic() < deadline:
        time.sleep(0.05)


def settle(stack: Stack, table: str) -> None:
    """VACUUM ANALYZE a just-loaded table, untimed: otherwise autovacuum scans it (insert threshold) during the
    NEXT measurement, which always belonged to the other side (plain, then API, then plain...)."""
    stack.psql(f"VACUUM ANALYZE {table}", dbname="carto_dw", user="carto_dw")


def reset_peak(pid: int) -> None:
    """Resets the process's VmHWM (clear_refs 5) so each import's peak is its own."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def upload(stack: Stack, token: str, path: Path, destination: str) -> str:
    qs = urllib.parse.urlencode({"connection": "carto_dw", "destination": destination, "filename": path.name,
                                 "overwrite": "true"})
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=600)
    conn.putrequest("POST", f"/api/v3/imports?{qs}")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(path.stat().st_size))
    conn.endheaders()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            conn.send(block)
    r = conn.getresponse()
    body = r.read()
    if r.status != 201:
        raise SystemExit(f"upload failed: {r.status} {body[:500]!r}")
    return json.loads(body)["id"]


def wait_import(stack: Stack, token: str, job_id: str) -> dict:
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=30)
        conn.request("GET", f"/api/v3/imports/{job_id}", headers={"Authorization": f"Bearer {token}"})
        doc = json.loads(conn.getresponse().read())
        if doc.get("status") in ("success", "failure", "cancelled"):
            if doc["status"] != "success":
                raise SystemExit(f"import {job_id} ended {doc['status']}: {doc}")
            return doc
        time.sleep(0.2)


def via_api(stack: Stack, token: str, path: Path, table: str) -> tuple[float, float, int, dict]:
    started = time.monotonic()
    job_id = upload(stack, token, path, table)
    doc = wait_import(stack, token, job_id)
    total = time.monotonic() - started
    job = float(stack.psql(f"SELECT extract(epoch FROM finished_at - started_at) FROM jobs WHERE id = {int(job_id)}",
                           dbname="tessera"))
    result = doc.get("result") or {}
    return total, job, int(result.get("ogr2ogrPeakRssKiB") or 0), result.get("phasesMs") or {}


def source_of(path: Path, fmt: str) -> str:
    return f"/vsizip/{path}" if fmt == "shpzip" else str(path)


def open_cpu(path: Path, fmt: str) -> float:
    """CPU seconds GDAL spends opening the file and reading its schema, without loading it (untimed otherwise)."""
    cmd = ["ogrinfo", "-ro", "-so", "-al", "-nocount", "-noextent", *(CSV_OPEN if fmt == "csv" else []), source_of(path, fmt)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ogrinfo could not open {path}")
    return usage.ru_utime + usage.ru_stime


def via_ogr2ogr(stack: Stack, path: Path, fmt: str, table: str) -> tuple[float, int, float, float]:
    """Wall time, ogr2ogr's peak RSS, ogr2ogr's CPU and PostgreSQL's CPU."""
    source = source_of(path, fmt)
    cmd = ["ogr2ogr", "-f", "PostgreSQL", f"PG:{stack.dsn('carto_dw', 'carto_dw')}", source, "--config", "PG_USE_COPY", "YES",
           "-nln", table, "-lco", "GEOMETRY_NAME=geom", "-a_srs", "EPSG:4326", "-overwrite"]
    if fmt == "csv":
        cmd += CSV_OPEN
    idle = backends(stack)
    started, pg_before = time.monotonic(), pg_cpu(stack)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - started
    wait_backends(stack, idle)
    pg = pg_cpu(stack) - pg_before
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"ogr2ogr failed: {proc.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, pg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default=None, help="about this much CSV / GeoJSON, e.g. 100M or 1G (default 100M)")
    ap.add_argument("--size-mb", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--formats", default="csv,geojson,gpkg,shpzip")
    ap.add_argument("--bin", default=DEFAULT_BIN)
    ap.add_argument("--json", action="store_true", help="print one JSON object with the results on the last line")
    args = ap.parse_args()
    size = parse_size(args.size) if args.size else (args.size_mb << 20 if args.size_mb else 100 << 20)
    formats = args.formats.split(",")
    if unknown := set(formats) - {"csv", "geojson", "gpkg", "shpzip"}:
        raise SystemExit(f"unknown formats: {', '.join(sorted(unknown))}")
    bin_dir = Path(args.bin).resolve()
    require("ogr2ogr", "gdal-bin")
    # Source file + the upload's copy + converted file + two tables with indexes + WAL: about 6x, plus headroom.
    free = shutil.disk_usage("/tmp").free
    if free < 6 * size + (2 << 30):
        raise SystemExit(f"not enough free disk in /tmp for --size {size >> 20} MB: {free >> 20} MB free, "
                         f"{(6 * size + (2 << 30)) >> 20} MB needed")
    results = []
    with throwaway_stack(bin_dir, redis=True) as stack:
        tool(bin_dir, stack, "create-admin", "--email", ADMIN_EMAIL, "--password", "bench-" + os.urandom(8).hex())
        token = tool(bin_dir, stack, "tokens", "create", "--email", ADMIN_EMAIL, "--source", "*", "--apis", "imports")
        stack.start_api("import-api", bin_dir / "tessera-import-api")
        stack.start_worker("import-worker", bin_dir / "tessera-import-worker")
        stack.start_nginx()
        stack.psql("CREATE SCHEMA IF NOT EXISTS bench", dbname="carto_dw", user="carto_dw")

        print(f"{'format':>7} {'MB':>6} {'rows':>9} | {'ogr2ogr s':>9} {'MB/s':>6} | {'API total s':>11} {'MB/s':>6} {'ratio':>5}"
              f" | {'job s':>6} {'ratio':>5} | CPU s: ogr2ogr+PG job+PG ratio | peak RSS MiB: worker child sum ogr2ogr", flush=True)
        csv = stack.root / "bench.csv"
        n_csv = generate(csv, "csv", size) if {"csv", "gpkg", "shpzip"} & set(formats) else 0
        for fmt in formats:
            if fmt == "csv":
                path, n = csv, n_csv
            elif fmt == "geojson":
                path = stack.root / "bench.geojson"
                n = generate(path, fmt, size)
            else:
                path, n = convert(csv, fmt), n_csv
            mb = path.stat().st_size / (1 << 20)
            ogr_s, ogr_rss, ogr_own_cpu, ogr_pg_cpu = via_ogr2ogr(stack, path, fmt, f"bench.ogr_{fmt}")
            ogr_cpu = ogr_own_cpu + ogr_pg_cpu
            settle(stack, f"bench.ogr_{fmt}")
            worker_pid = stack.pid("import-worker")
            reset_peak(worker_pid)
            worker_before, pg_before = cpu_with_children(worker_pid), pg_cpu(stack)
            api_s, job_s, child_rss, phases = via_api(stack, token, path, f"bench.api_{fmt}")
            worker = vmhwm_kib(worker_pid)
            # The worker's job: itself, its GDAL children, PostgreSQL (the upload's import-api and nginx not counted).
            job_own_cpu, job_pg_cpu = cpu_with_children(worker_pid) - worker_before, pg_cpu(stack) - pg_before
            job_cpu = job_own_cpu + job_pg_cpu
            settle(stack, f"bench.api_{fmt}")
            opening = open_cpu(path, fmt)
            for table in (f"bench.ogr_{fmt}", f"bench.api_{fmt}"):
                count = int(stack.psql(f"SELECT count(*) FROM {table}", dbname="carto_dw", user="carto_dw"))
                if count != n:
                    raise SystemExit(f"{table}: {count} rows, expected {n}")
            print(f"{fmt:>7} {mb:>6.0f} {n:>9} | {ogr_s:>9.1f} {mb / ogr_s:>6.1f} | {api_s:>11.1f} {mb / api_s:>6.1f} "
                  f"{ogr_s / api_s:>5.2f} | {job_s:>6.1f} {ogr_s / job_s:>5.2f} | {ogr_cpu:>13.1f} {job_cpu:>6.1f} {ogr_cpu / job_cpu:>5.2f} | "
                  f"{worker / 1024:>6.0f} {child_rss / 1024:>5.0f} "
                  f"{(worker + child_rss) / 1024:>3.0f} {ogr_rss / 1024:>7.0f}", flush=True)
            # Where the job's time went (the worker's own phase clock, ms), to see which step to work on.
            print(f"{'':>7} job phases ms: " + " ".join(f"{k}={v}" for k, v in phases.items()), flush=True)
            # Which process the CPU went to: the client side (GDAL) or PostgreSQL, and how much of GDAL's was opening.
            print(f"{'':>7} CPU s by process: plain ogr2ogr {ogr_own_cpu:.1f} + PostgreSQL {ogr_pg_cpu:.1f}; job worker+GDAL "
                  f"{job_own_cpu:.1f} + PostgreSQL {job_pg_cpu:.1f}; GDAL opening the file alone {opening:.1f}", flush=True)
            results.append({"format": fmt, "mb": round(mb, 1), "rows": n, "ogr2ogr_s": round(ogr_s, 2), "api_total_s": round(api_s, 2),
                            "job_s": round(job_s, 2), "ogr2ogr_cpu_s": round(ogr_cpu, 2), "job_cpu_s": round(job_cpu, 2),
                            "ratio_cpu": round(ogr_cpu / job_cpu, 3), "ogr2ogr_own_cpu_s": round(ogr_own_cpu, 2),
                            "ogr2ogr_pg_cpu_s": round(ogr_pg_cpu, 2), "job_own_cpu_s": round(job_own_cpu, 2),
                            "job_pg_cpu_s": round(job_pg_cpu, 2), "gdal_open_cpu_s": round(opening, 2), "ratio_total": round(ogr_s / api_s, 3), "ratio_job": round(ogr_s / job_s, 3),
                            "worker_peak_rss_mib": round(worker / 1024, 1), "gdal_peak_rss_mib": round(child_rss / 1024, 1),
                            "worker_plus_gdal_peak_rss_mib": round((worker + child_rss) / 1024, 1),
                            "ogr2ogr_peak_rss_mib": round(ogr_rss / 1024, 1), "job_phases_ms": phases})
            if path != csv:
                path.unlink()
            stack.psql(f"DROP TABLE bench.ogr_{fmt}, bench.api_{fmt}", dbname="carto_dw", user="carto_dw")
        csv.unlink(missing_ok=True)
        api_rss = vmhwm_kib(stack.pid("import-api")) / 1024
        print(f"import-api peak RSS: {api_rss:.0f} MiB; load average {os.getloadavg()[0]:.1f}")
    if args.json:
        print(json.dumps({"bench": "imports", "size_bytes": size, "results": results, "import_api_peak_rss_mib": round(api_rss, 1),
                          "loadavg": round(os.getloadavg()[0], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
