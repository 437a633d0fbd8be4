#!/usr/bin/env python3
"""Isoline latency of the local LDS provider, at 10- and 30-minute ranges (--ranges, seconds), per mode.

The road graph is the e2e test's synthetic street grid (Tests/e2e/osm_grid.py), loaded with
`tessera lds load-roads` like an admin would: the 5×5 test graph itself and, to see how latency grows with
the network a range covers, larger grids of the same pattern (--grids, nodes per side; 60 = 3,600 crossings
over 13 km × 13 km). For each graph, mode and range, from four origins in turn:

  (a) sql:  `SELECT geojson FROM carto_lds.isolines(...)` through pgbench (-M prepared, one client): the
            database work alone;
  (b) api:  GET /api/v3/lds/isolines through nginx -> FastCGI tessera-lds-api (token check, quota charge,
            the same SQL, JSON), one client on a kept-alive connection, sequential requests.

Printed per row: requests, (b) p50/p90/p99/mean, (a) p50/mean, the hop's cost (b mean - a mean) and the
largest polygon's vertex count; plus the
load time of each graph. Latencies on these 2 shared cores vary with the other tenants: compare within a run.

usage: bench/lds-isolines [--bin .build/release] [--grids 5,60] [--ranges 600,1800] [--modes car,walk]
                          [--seconds 5] [--state DIR]
"""
from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "harness"))
sys.path.insert(0, str(REPO / "Tests" / "e2e"))
import osm_grid  # noqa: E402
from stack import ADMIN_EMAIL, API_PROGRAMS, PG_BIN, Stack, StackError  # noqa: E402
from tiles_bench import BenchError, tool  # noqa: E402  (the `tessera` CLI runner of the benches)

PGBENCH = str(PG_BIN / "pgbench") if (PG_BIN / "pgbench").exists() else "pgbench"


def origins(n: int) -> list[tuple[float, float]]:
    """A corner, the centre, another corner and a point near the fast row: different reachable shapes."""
    return [osm_grid.coord(i, j) for i, j in ((0, 0), (n // 2, n // 2), (n - 1, 0), (n // 3, 1))]


def api_latencies(stack: Stack, token: str, n: int, mode: str, seconds_range: int, seconds: float) -> tuple[list[float], int]:
    """Sequential GETs for `seconds` on one kept-alive connection; returns latencies (ms) and polygon points."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=120)
    paths = [f"/api/v3/lds/isolines?" + urllib.parse.urlencode(
        {"origin": f"{lon},{lat}", "mode": mode, "range": seconds_range, "range_type": "time"}) for lon, lat in origins(n)]
    headers = {"Authorization": f"Bearer {token}"}
    points = 0

    def get(path: str) -> float:
        nonlocal points
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        elapsed = (time.perf_counter() - started) * 1000
        if r.status != 200:
            raise BenchError(f"GET {path}: {r.status} {body[:300]!r}")
        points = max(points, body.count(b"],["))
        return elapsed

    for p in paths:  # warm: pooled connections, prepared statements, caches
        get(p)
    out: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out.append(get(paths[len(out) % len(paths)]))
    conn.close()
    return out, points


def sql_latencies(stack: Stack, work: Path, n: int, mode: str, seconds_range: int, seconds: float) -> list[float]:
    """Per-statement latencies (ms) from pgbench's transaction log, without each origin's first statement
    (a new backend loads PostGIS and pgRouting and plans on first use; lds-api's pooled connections have)."""
    scripts = []
    for k, (lon, lat) in enumerate(origins(n)):
        f = work / f"iso-{n}-{mode}-{seconds_range}-{k}.sql"
        f.write_text(f"SELECT geojson FROM carto_lds.isolines('{mode}', {lon}, {lat}, '{{{seconds_range}}}'::float8[], 'time');\n")
        scripts += ["-f", str(f)]
    prefix = work / f"pgbench-{n}-{mode}-{seconds_range}"
    for old in work.glob(prefix.name + "*"):
        old.unlink()
    cmd = [PGBENCH, "-n", "-M", "prepared", "-c", "1", "-T", str(max(1, round(seconds))), "-l", f"--log-prefix={prefix}",
           *scripts, stack.warehouse_dsn]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 300)
    logs = list(work.glob(prefix.name + "*"))
    if r.returncode != 0 or not logs:
        raise BenchError(f"pgbench failed ({r.returncode}):\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
    seen: set[str] = set()
    out: list[float] = []
    for line in logs[0].read_text().splitlines():
        fields = line.split()  # client transaction latency_us script epoch us
        if fields[3] in seen:
            out.append(int(fields[2]) / 1000)
        seen.add(fields[3])
    if not out:
        raise BenchError("pgbench ran no statement beyond the warm-up ones: raise --seconds")
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(REPO / ".build" / "release"))
    ap.add_argument("--grids", default="5,60", help="nodes per side of each graph (5 = the e2e test graph)")
    ap.add_argument("--ranges", default="600,1800", help="isoline ranges in seconds")
    ap.add_argument("--modes", default="car,walk")
    ap.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    ap.add_argument("--state", help="keep the stack here (default: a temporary directory, removed)")
    args = ap.parse_args()
    bin_dir = Path(args.bin).resolve()
    for program in ("tessera", API_PROGRAMS["lds-api"]):
        if not (bin_dir / program).is_file():
            print(f"error: {bin_dir / program} is missing (swift build -c release)", file=sys.stderr)
            return 2
    root = Path(args.state).resolve() if args.state else Path(tempfile.mkdtemp(prefix="tessera-bench-lds-", dir="/tmp"))
    stack = Stack(root)
    try:
        stack.start_postgres()
        stack.start_redis()
        tool(bin_dir, stack, "migrate")
        tool(bin_dir, stack, "create-admin", "--email", ADMIN_EMAIL, "--password", "bench-" + os.urandom(8).hex(), "--if-missing")
        token = tool(bin_dir, stack, "tokens", "create", "--email", ADMIN_EMAIL, "--apis", "lds").strip().splitlines()[-1]
        big = str(2_000_000_000)  # the bench's thousands of requests must not meet the monthly quota
        stack.start_api("lds-api", bin_dir / API_PROGRAMS["lds-api"], env={"TESSERA_LDS_QUOTA_ISOLINES": big})
        stack.start_nginx()
        work = root / "bench"
        work.mkdir(exist_ok=True)
        print(f"{'graph':>14} {'mode':>5} {'range':>6} {'reqs':>6} {'api p50':>8} {'p90':>8} {'p99':>8} {'mean':>8}"
              f" {'sql p50':>8} {'sql mean':>9} {'hop':>7} {'poly pts':>8}", flush=True)
        loads = []
        for n in (int(g) for g in args.grids.split(",")):
            osm = osm_grid.write(work / f"grid-{n}.osm", n)
            started = time.monotonic()
            out = tool(bin_dir, stack, "lds", "load-roads", "--osm", str(osm), "--email", ADMIN_EMAIL)
            loads.append(f"grid {n}×{n}: {out.strip().splitlines()[-1]} (wall {time.monotonic() - started:.1f} s)")
            for mode in args.modes.split(","):
                for r in (int(x) for x in args.ranges.split(",")):
                    lat, points = api_latencies(stack, token, n, mode, r, args.seconds)
                    sql = sql_latencies(stack, work, n, mode, r, args.seconds)
                    mean, sql_mean = statistics.fmean(lat), statistics.fmean(sql)
                    print(f"{f'{n}x{n} grid':>14} {mode:>5} {f'{r // 60} min':>6} {len(lat):>6} {pct(lat, 50):>8.2f} {pct(lat, 90):>8.2f}"
                          f" {pct(lat, 99):>8.2f} {mean:>8.2f} {pct(sql, 50):>8.2f} {sql_mean:>9.2f} {mean - sql_mean:>7.2f}"
                          f" {points:>8}", flush=True)
        print("latencies in ms; hop = api mean - sql mean (nginx, FastCGI, auth, quota charge, JSON)")
        for line in loads:
            print(line)
        return 0
    except (BenchError, StackError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        stack.stop_all()
        if not args.state:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
