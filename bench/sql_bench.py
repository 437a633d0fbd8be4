#!/usr/bin/env python3
"""SQL API throughput against its raw floor, measured in one run.

The same 100-row query runs (a) through pgbench against the warehouse (prepared, as the API prepares
it) and (b) as a POST (never answered by the http-cache) through nginx -> FastCGI ->
tessera-maps-api -> PostgreSQL with wrk, at equal concurrency. Prints requests/s for both and the ratio (b)/(a),
the API's p50/p99 latency, the maps-api CPU time per request (the non-database cost), PostgreSQL's CPU per
statement on both paths, and the database round trips per request the pool counted (on the request's path,
and the reset's after the response). With --json the last line is one JSON object with all of it.

usage: bench/sql [--clients 2,8] [--seconds 10] [--bin .build/release] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "harness"))
from stack import ADMIN_EMAIL, API_PROGRAMS, Stack  # noqa: E402
from benchlib import cpu_seconds, tool, tree_cpu_seconds  # noqa: E402  (bench/ is this script's directory)

QUERY = os.environ.get("BENCH_QUERY") or ("SELECT id, name, category, score, created_at FROM bench_places "
         "WHERE id > 1000 ORDER BY id LIMIT 100")
SETUP = """
CREATE TABLE IF NOT EXISTS bench_places AS
SELECT g AS id, 'place ' || g AS name, (ARRAY['city','town','village'])[1 + g % 3] AS category,
       (g * 7919 % 1000) / 10.0 AS score, timestamptz '2024-01-01' + g * interval '1 minute' AS created_at
FROM generate_series(1, 100000) g;
CREATE UNIQUE INDEX IF NOT EXISTS bench_places_id ON bench_places (id);
ANALYZE bench_places;
"""


def pgbench(stack: Stack, clients: int, seconds: int) -> tuple[float, float]:
    """(tps, PostgreSQL CPU µs per statement)."""
    script = stack.root / "query.sql"
    script.write_text(QUERY + ";\n")
    pg0 = tree_cpu_seconds(stack.pid("postgres"))
    out = subprocess.run(
        ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients), "-T", str(seconds),
         "-f", str(script), stack.warehouse_dsn],
        check=True, capture_output=True, text=True).stdout
    time.sleep(1)  # pgbench's backends exit as it disconnects; their CPU counts once the postmaster reaps them
    pg_s = tree_cpu_seconds(stack.pid("postgres")) - pg0
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    return tps, pg_s / (tps * seconds) * 1e6


def ms(wrk_time: str) -> float:
    """wrk's latency text (e.g. 512.00us, 1.20ms, 2.00s) in milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", wrk_time)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]


def pool_counters(stack: Stack) -> dict[str, float]:
    """The warehouse pool's checkouts and round trips (by phase) from maps-api's metrics."""
    url = f"http://127.0.0.1:{stack.metrics_port}/metrics/maps-api"
    text = subprocess.run(["curl", "-sf", url], check=True, capture_output=True, text=True).stdout
    counts: dict[str, float] = {}
    for key, pattern in [("checkouts", r'^tessera_db_pool_checkouts_total\{pool="warehouse"\} (\S+)'),
                         ("request", r'^tessera_db_round_trips_total\{pool="warehouse",phase="request"\} (\S+)'),
                         ("reset", r'^tessera_db_round_trips_total\{pool="warehouse",phase="reset"\} (\S+)')]:
        m = re.search(pattern, text, re.M)
        counts[key] = float(m.group(1)) if m else 0.0
    return counts


def wrk(url: str, token: str, clients: int, seconds: int, script: Path | None = None) -> tuple[float, float, float]:
    out = subprocess.run(
        ["wrk", "-t", str(clients), "-c", str(clients), "-d", f"{seconds}s", "--latency",
         "-H", f"Authorization: Bearer {token}", *(["-s", str(script)] if script else []), url],
        check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
    return rps, ms(p50), ms(p99)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="2,8")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--bin", default=str(REPO / ".build" / "release"))
    ap.add_argument("--json", action="store_true", help="end with one line holding a JSON object of the results")
    args = ap.parse_args()
    bin_dir = Path(args.bin).resolve()
    for name in ("wrk", "pgbench"):
        if not shutil.which(name):
            raise SystemExit(f"{name} is required (apt-get install wrk postgresql-client)")

    root = Path(tempfile.mkdtemp(prefix="tessera-bench-", dir="/tmp"))
    stack = Stack(root)
    try:
        stack.start_postgres()
        stack.start_redis()
        tool(bin_dir, stack, "migrate")
        tool(bin_dir, stack, "create-admin", "--email", ADMIN_EMAIL, "--password", "bench-" + os.urandom(8).hex())
        stack.psql(SETUP, dbname="carto_dw", user="carto_dw")
        token = tool(bin_dir, stack, "tokens", "create", "--email", ADMIN_EMAIL, "--source", "*", "--apis", "sql")
        stack.start_api("maps-api", bin_dir / API_PROGRAMS["maps-api"])
        stack.start_nginx()
        # POST: the uncached path nginx -> FastCGI -> maps-api (GETs may be answered by the http-cache).
        url = f"{stack.base_url}/api/v3/sql/carto_dw/query"
        body = json.dumps({"q": QUERY})
        script = root / "post.lua"
        script.write_text('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n'
                          % json.dumps(body))
        subprocess.run(["curl", "-sf", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}",
                        "-H", "Content-Type: application/json", "-d", body, url], check=True)
        api_pid = stack.pid("maps-api")

        print(f"query: {QUERY}")
        print(f"load: {os.getloadavg()[0]:.2f} (1-min average at start)")
        print(f"{'clients':>7} {'pgbench tps':>12} {'tessera rps':>12} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}"
              f" {'API µs/req':>10} {'PG µs/req':>9} {'PG µs/tx':>8} {'RT/req':>6} {'reset RT':>8}")
        runs = []
        for clients in [int(c) for c in args.clients.split(",")]:
            pgbench(stack, clients, 2)  # warm
            raw, pg_raw_us = pgbench(stack, clients, args.seconds)
            wrk(url, token, clients, 2, script)  # warm the API's pool and prepared statements
            cpu0, pg0, pool0 = cpu_seconds(api_pid), tree_cpu_seconds(stack.pid("postgres")), pool_counters(stack)
            rps, p50, p99 = wrk(url, token, clients, args.seconds, script)
            n = rps * args.seconds
            api_us = (cpu_seconds(api_pid) - cpu0) / n * 1e6
            pg_us = (tree_cpu_seconds(stack.pid("postgres")) - pg0) / n * 1e6
            pool1 = pool_counters(stack)
            checkouts = max(1.0, pool1["checkouts"] - pool0["checkouts"])
            rt = (pool1["request"] - pool0["request"]) / checkouts
            reset_rt = (pool1["reset"] - pool0["reset"]) / checkouts
            print(f"{clients:>7} {raw:>12.0f} {rps:>12.0f} {rps / raw:>6.2f} {p50:>7.2f} {p99:>7.2f}"
                  f" {api_us:>10.0f} {pg_us:>9.0f} {pg_raw_us:>8.0f} {rt:>6.2f} {reset_rt:>8.2f}")
            runs.append({"clients": clients, "pgbench_tps": round(raw, 1), "api_rps": round(rps, 1),
                         "ratio": round(rps / raw, 3), "p50_ms": p50, "p99_ms": p99, "api_cpu_us_per_req": round(api_us, 1),
                         "pg_cpu_us_per_req": round(pg_us, 1), "pg_cpu_us_per_tx_pgbench": round(pg_raw_us, 1),
                         "round_trips_per_req": round(rt, 3), "reset_round_trips_per_req": round(reset_rt, 3)})
        if args.json:
            print(json.dumps({"bench": "sql", "query": QUERY, "seconds": args.seconds,
                              "load1": round(os.getloadavg()[0], 2), "runs": runs}))
        return 0
    finally:
        stack.stop_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
