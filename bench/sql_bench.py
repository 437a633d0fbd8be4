#!/usr/bin/env python3
"""SQL API throughput against its raw floor, measured in one run.

The same 100-row query runs (a) through pgbench against the warehouse (prepared, as the API prepares
it) and (b) as a POST (never answered by the http-cache) through nginx -> FastCGI ->
tessera-maps-api -> PostgreSQL with wrk, at equal concurrency. Prints requests/s for both and the ratio (b)/(a), plus the maps-api CPU time per request
beyond PostgreSQL's (the non-database cost).

usage: bench/sql [--clients 2,8] [--seconds 10] [--bin .build/release]
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
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "harness"))
from stack import ADMIN_EMAIL, API_PROGRAMS, Stack  # noqa: E402
from benchlib import cpu_seconds, tool  # noqa: E402  (bench/ is this script's directory)

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


def pgbench(stack: Stack, clients: int, seconds: int) -> float:
    script = stack.root / "query.sql"
    script.write_text(QUERY + ";\n")
    out = subprocess.run(
        ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients), "-T", str(seconds),
         "-f", str(script), stack.warehouse_dsn],
        check=True, capture_output=True, text=True).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def wrk(url: str, token: str, clients: int, seconds: int, script: Path | None = None) -> tuple[float, str]:
    out = subprocess.run(
        ["wrk", "-t", str(clients), "-c", str(clients), "-d", f"{seconds}s", "--latency",
         "-H", f"Authorization: Bearer {token}", *(["-s", str(script)] if script else []), url],
        check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
    return rps, f"p50 {p50} p99 {p99}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="2,8")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--bin", default=str(REPO / ".build" / "release"))
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
        print(f"{'clients':>7} {'pgbench tps':>12} {'tessera rps':>12} {'ratio':>6}  latency (tessera)   API CPU/req")
        for clients in [int(c) for c in args.clients.split(",")]:
            pgbench(stack, clients, 2)  # warm
            raw = pgbench(stack, clients, args.seconds)
            wrk(url, token, clients, 2, script)  # warm the API's pool and prepared statements
            cpu0 = cpu_seconds(api_pid)
            rps, latency = wrk(url, token, clients, args.seconds, script)
            api_us = (cpu_seconds(api_pid) - cpu0) / (rps * args.seconds) * 1e6
            print(f"{clients:>7} {raw:>12.0f} {rps:>12.0f} {rps / raw:>6.2f}  {latency:<18} {api_us:.0f} µs")
        return 0
    finally:
        stack.stop_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
