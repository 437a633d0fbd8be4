#!/usr/bin/env python3
"""H3 aggregation cost against plain grid aggregations, measured in one run.

One million points (a 4x3 degree box, a region at tile zoom 6-7) in a throwaway PostgreSQL, then each statement groups them
into cells, timed by the server (median of --runs interleaved rounds, one worker: per-core cost, no parallel scan):
  h3 text       carto.h3_fromgeogpoint(geom, 7)                    hex-string cells (CARTO's H3 columns)
  h3 bigint     carto.h3_fromgeogpoint_int(geom, 7)                what aggregating SQL should group on
  h3 then text  the same, hex strings made after grouping           the shape of an H3 tile statement
  h3 ST_X/ST_Y  carto.h3_fromlonglat_int(ST_X(geom), ST_Y(geom), 7) without the serialized-point fast path
  quadbin       carto.quadbin_frompoint(geom, 13)                  Tessera's PL/pgSQL quadbin functions
  snap          ST_SnapToGrid(geom, 0.02)                          PostGIS C, the plain-grid floor
Prints ms per statement, points/s and the ratio of each to `snap`. Needs `make build` (tessera_h3).

usage: bench/h3 [--points 1000000] [--resolution 7] [--runs 5]
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "harness"))
from stack import Stack  # noqa: E402


def psql(stack: Stack, sql: str) -> str:
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", stack.warehouse_dsn, "-f", "-"],
                       input=sql, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench/h3: psql failed: {r.stderr.strip()}")
    return r.stdout


def timed(stack: Stack, query: str) -> tuple[float, int]:
    """Server-side time (EXPLAIN ANALYZE without per-row timing) and the number of groups."""
    out = psql(stack, f"SET max_parallel_workers_per_gather = 0;\n"
                      f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT TEXT) {query};")
    ms = float(re.search(r"Execution Time: ([0-9.]+) ms", out).group(1))
    return ms, int(re.search(r"Aggregate.*?actual rows=(\d+) loops", out, re.S).group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--resolution", type=int, default=7)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tessera-bench-h3-", dir="/tmp"))
    stack = Stack(root)
    try:
        stack.start_postgres()
        if psql(stack, "SELECT count(*) FROM pg_extension WHERE extname = 'tessera_h3'").strip() != "1":
            raise SystemExit("bench/h3: tessera_h3 is not installed (make build)")
        psql(stack, (REPO / "Sources/MapsAPI/warehouse/001_quadbin.sql").read_text())
        psql(stack, f"""
            CREATE TABLE bench_points AS
              SELECT i AS id, ST_SetSRID(ST_MakePoint(2 + 4 * random(), 48 + 3 * random()), 4326) AS geom
              FROM generate_series(1, {args.points}) i;
            VACUUM ANALYZE bench_points;""")
        r = args.resolution
        statements = {
            "h3 text": f"SELECT carto.h3_fromgeogpoint(geom, {r}) AS cell, count(*) FROM bench_points GROUP BY 1",
            "h3 bigint": f"SELECT carto.h3_fromgeogpoint_int(geom, {r}) AS cell, count(*) FROM bench_points GROUP BY 1",
            "h3 then text": f"SELECT carto.h3_int_tostring(cell), n FROM (SELECT carto.h3_fromgeogpoint_int(geom, {r}) "
                            f"AS cell, count(*) AS n FROM bench_points GROUP BY 1) s",
            "h3 ST_X/ST_Y": f"SELECT carto.h3_fromlonglat_int(ST_X(geom), ST_Y(geom), {r}) AS cell, count(*) "
                            f"FROM bench_points GROUP BY 1",
            "quadbin": "SELECT carto.quadbin_frompoint(geom, 13) AS cell, count(*) FROM bench_points GROUP BY 1",
            "snap": "SELECT ST_SnapToGrid(geom, 0.02) AS cell, count(*) FROM bench_points GROUP BY 1",
        }
        # Rounds interleave the statements so a busy machine slows them alike; round 0 warms up.
        times: dict[str, list[float]] = {name: [] for name in statements}
        groups: dict[str, int] = {}
        for round_ in range(args.runs + 1):
            for name, q in statements.items():
                ms, groups[name] = timed(stack, q)
                if round_:
                    times[name].append(ms)
        results = {name: (statistics.median(t), groups[name]) for name, t in times.items()}
        floor = results["snap"][0]
        print(f"{args.points} points, H3 resolution {r}, median of {args.runs} runs, one worker")
        print(f"{'statement':<13} {'ms':>9} {'Mpoints/s':>10} {'groups':>8} {'vs snap':>8}")
        for name, (ms, groups) in results.items():
            print(f"{name:<13} {ms:9.1f} {args.points / ms / 1000:10.2f} {groups:8d} {ms / floor:7.2f}x")
    finally:
        stack.stop_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
