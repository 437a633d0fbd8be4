#!/usr/bin/env python3
"""LDS geocoding throughput against the gazetteer, measured in one run.

Loads the GeoNames gazetteer (`tessera lds load-places`), then measures geocodes per second:
  single  GET /api/v3/lds/geocoding/geocode through nginx -> FastCGI -> tessera-lds-api -> PostgreSQL
          (wrk, rotating through the addresses), beside the same lookups through pgbench
          (`SELECT * FROM carto_lds.geocode(...)`, prepared) at equal concurrency: the raw floor.
  batch   POST /api/v3/lds/geocoding/batch with --batch addresses per request, sequentially.
  hop     GET /api/v3/lds/health (no auth, no database) through the same nginx -> FastCGI path: what any
          request pays. The ceiling of a geocode is the hop in series with the lookup,
          1 / (1/hop + 1/pgbench); `ceil` is the API's rate over that ceiling (the goal is >= 0.9).
  trips   database statements per geocode (warehouse + metadata), counted in PostgreSQL's statement log
          over 200 sequential requests after the measurements.
  CPU     per lookup: lds-api's, the warehouse server's on the API path and under pgbench (the same statement:
          a difference is the server's, not the API's), pgbench's own, and the floor's time per lookup per
          client (when it is well above the CPU the floor pays, the floor waits: wake-ups, not work).
Two address sets: `exact` (names as the gazetteer spells them, modulo accents and case; the btree path)
and `fuzzy` (misspelled; the trigram path, the costly one).

Isolines: `--isolines` calls `isoline_bench`, the hook the routing side fills in (10- and 30-minute
ranges on its test graph); until then it reports what the API answers.

With --statements, every single-lookup measurement also lists, per lookup, what PostgreSQL ran on that path
(pg_stat_statements with track_planning: calls, mean execution and planning time), so the floor's statement
can be checked against the API's.

usage: bench/lds [--clients 1,2] [--seconds 10] [--batch 1000] [--bin .build/release] [--isolines] [--statements] [--json]
  --json  also print the results as one JSON object on the last line (read by bench/compare)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "harness"))
from demo_data import locate_data  # noqa: E402
from stack import ADMIN_EMAIL, API_PROGRAMS, Stack  # noqa: E402
from benchlib import cpu_seconds, tool  # noqa: E402  (bench/ is this script's directory)
from statement_log import statement_log  # noqa: E402

ADDRESSES = {
    "exact": ["Zaragoza", "Paris", "malaga", "Sao Paulo", "Krakow", "Tokyo", "Nairobi", "Lima", "Oslo", "Chicago",
              "Cordoba", "Valencia", "Munich", "Toronto", "Seoul", "Cairo"],
    "fuzzy": ["Zaragosa", "Barcelonna", "Londn", "Sevila", "Buenos Aries", "Amsterdamm", "Chicagoo", "Nairobbi",
              "Torontto", "Kairo", "Lisbonn", "Berlinn", "Madridd", "Vienaa", "Pragueh", "Osloo"],
}


# lds-api's statement (LocalProvider.geocodeSQL): the floor runs the same text with the address and the limit
# bound. pgbench cannot bind a NULL, so the absent country stays a literal (the one difference; --statements
# shows both paths' execution and planning per lookup side by side).
API_COLUMNS = "id, name, admin1, admin2, country_code, country_name, population, longitude, latitude, relevance"


def backend_cpu(stack: Stack, application: str) -> float:
    """CPU seconds used so far by the warehouse's server processes of one client program."""
    pids = stack.psql(f"SELECT pid FROM pg_stat_activity WHERE datname = 'carto_dw' AND application_name = '{application}'").split()
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(int(pid))
    return total


def pgbench(stack: Stack, names: list[str], clients: int, seconds: int) -> tuple[float, float, float]:
    """Lookups/s, and the server's and pgbench's CPU per lookup (µs), sampled inside the run (pgbench's server
    processes end with it). CPU per lookup against time per lookup tells a floor limited by work from one
    limited by waiting (wake-ups between pgbench and its server at low concurrency)."""
    script = stack.root / "geocode.sql"
    array = "ARRAY[" + ",".join("'" + n.replace("'", "''") + "'" for n in names) + "]"
    script.write_text(f"\\set i random(1, {len(names)})\n\\set limit 1\n"
                      f"SELECT {API_COLUMNS} FROM carto_lds.geocode(({array})[:i], NULL, :limit);\n")
    p = subprocess.Popen(["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients), "-T", str(seconds),
                          "-f", str(script), stack.warehouse_dsn], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    window = max(seconds - 1.5, 0.5)
    time.sleep(min(1.0, seconds / 4))
    server0, client0, started = backend_cpu(stack, "pgbench"), cpu_seconds(p.pid), time.monotonic()
    time.sleep(window)
    server1, client1, window = backend_cpu(stack, "pgbench"), cpu_seconds(p.pid), time.monotonic() - started
    out, err = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"pgbench failed:\n{err}")
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    lookups = tps * window
    return tps, (server1 - server0) / lookups * 1e6, (client1 - client0) / lookups * 1e6


def ms(text: str) -> float:
    """wrk's latency (`812.00us`, `1.20ms`, `2.00s`) in milliseconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def wrk(url: str, token: str | None, names: list[str], clients: int, seconds: int, root: Path,
        paths: list[str] | None = None) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 (ms)."""
    script = root / "rotate.lua"
    paths = paths or [f"/api/v3/lds/geocoding/geocode?address={urllib.request.quote(n)}" for n in names]
    script.write_text("local paths = %s\nlocal i = 0\nrequest = function()\n  i = i %% #paths + 1\n"
                      "  return wrk.format(\"GET\", paths[i])\nend\n" % ("{" + ",".join(json.dumps(p) for p in paths) + "}"))
    auth = ["-H", f"Authorization: Bearer {token}"] if token else []
    out = subprocess.run(["wrk", "-t", str(clients), "-c", str(clients), "-d", f"{seconds}s", "--latency",
                          *auth, "-s", str(script), url],
                         check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
    return rps, ms(p50), ms(p99)


def round_trips(stack: Stack, token: str, names: list[str], count: int = 200) -> tuple[float, float]:
    """Warehouse and metadata statements per geocode, from PostgreSQL's statement log."""
    def get(name: str) -> None:
        req = urllib.request.Request(f"{stack.base_url}/api/v3/lds/geocoding/geocode?address={urllib.request.quote(name)}",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
    with statement_log(stack) as log:
        for i in range(count):
            get(names[i % len(names)])
    warehouse = log.of_backends_running("carto_lds.geocode(")
    # Only lds-api and this script use the bench's cluster, and the script does not touch the metadata.
    metadata = [s for s in log.statements() if s[1:3] == ("tessera", "tessera")]
    return len(warehouse) / count, len(metadata) / count


def enable_statement_stats(stack: Stack) -> None:
    """--statements: pg_stat_statements with planning times (a restart: call before the services connect)."""
    stack.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    stack.restart_postgres()
    stack.psql("ALTER SYSTEM SET pg_stat_statements.track_planning = on")  # known only once the library is loaded
    stack.psql("SELECT pg_reload_conf()")
    stack.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def statements_per_lookup(stack: Stack) -> list[str]:
    """Every statement the cluster ran since the last call, per geocode (the calls of the statement calling
    carto_lds.geocode): whether the floor and the API run the same work, and how often either plans."""
    rows = stack.psql("""
        SELECT d.datname, s.calls, s.total_exec_time / s.calls, s.plans, s.total_plan_time / greatest(s.plans, 1),
               regexp_replace(s.query, '\\s+', ' ', 'g')
        FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE s.calls > 0 AND s.query NOT LIKE '%pg_stat_statements%' ORDER BY s.calls DESC""")
    stack.psql("SELECT pg_stat_statements_reset()")
    stats = [r.split("|", 5) for r in rows.splitlines() if r]
    lookups = max([int(r[1]) for r in stats if "carto_lds.geocode(" in r[5]] or [0])
    if not lookups:
        return ["      (no geocode statement ran)"]
    return [f"      {db:<9} {int(calls) / lookups:>6.3f} calls {float(exec_ms) * 1000:>7.1f} µs exec "
            f"{int(plans) / lookups:>6.3f} plans {float(plan_ms) * 1000:>7.1f} µs plan  {text[:80]}"
            for db, calls, exec_ms, plans, plan_ms, text in stats if int(calls) / lookups >= 0.001]


def distinct_batch(stack: Stack, token: str, names: list[str], size: int) -> float:
    """Every address distinct (so the API's de-duplication cannot help): a name plus a unique suffix
    that adds context without matching anything."""
    addresses = [f"{names[i % len(names)]}, q{i}" for i in range(size)]
    req = urllib.request.Request(f"{stack.base_url}/api/v3/lds/geocoding/batch", data=json.dumps({"addresses": addresses}).encode(),
                                 method="POST", headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    started = time.monotonic()
    with urllib.request.urlopen(req, timeout=600) as r:
        answers = json.load(r)
    assert len(answers) == size
    return size / (time.monotonic() - started)


def isoline_bench(stack: Stack, token: str) -> None:
    """HOOK for the routing side: build the test graph, then time GET /api/v3/lds/isolines at 10- and
    30-minute ranges. Until a routing provider exists this prints what the API answers."""
    req = urllib.request.Request(f"{stack.base_url}/api/v3/lds/isolines?origin=-0.88,41.65&range=600",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        urllib.request.urlopen(req, timeout=60)
        print("isolines: answered 200 (no timing yet: fill in isoline_bench)")
    except urllib.error.HTTPError as e:
        print(f"isolines: not measured ({e.code} {json.load(e).get('error')})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="1,2")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--bin", default=str(REPO / ".build" / "release"))
    ap.add_argument("--isolines", action="store_true")
    ap.add_argument("--statements", action="store_true",
                    help="per lookup, every statement each path ran (pg_stat_statements: calls, execution and planning)")
    ap.add_argument("--json", action="store_true", help="print the results as one JSON object on the last line")
    args = ap.parse_args()
    bin_dir = Path(args.bin).resolve()
    for name in ("wrk", "pgbench"):
        if not shutil.which(name):
            raise SystemExit(f"{name} is required (apt-get install wrk postgresql-client)")

    root = Path(tempfile.mkdtemp(prefix="tessera-bench-", dir="/tmp"))
    stack = Stack(root)
    try:
        stack.start_postgres()
        if args.statements:
            enable_statement_stats(stack)
        stack.start_redis()
        tool(bin_dir, stack, "migrate")
        tool(bin_dir, stack, "create-admin", "--email", ADMIN_EMAIL, "--password", "bench-" + os.urandom(8).hex())
        started = time.monotonic()
        tool(bin_dir, stack, "lds", "load-places", "--file", locate_data(None, True)[0])
        print(f"gazetteer loaded in {time.monotonic() - started:.1f} s")
        token = tool(bin_dir, stack, "tokens", "create", "--email", ADMIN_EMAIL, "--source", "*", "--apis", "lds")
        for service in ("geocoding", "isolines"):
            tool(bin_dir, stack, "lds", "quota", "set", "--email", ADMIN_EMAIL, "--service", service, "--quota", str(10 ** 12))
        stack.start_api("lds-api", bin_dir / API_PROGRAMS["lds-api"])
        stack.start_nginx()
        api_pid = stack.pid("lds-api")
        url = stack.base_url

        clients_list = [int(c) for c in args.clients.split(",")]
        results: dict = {"bench": "lds", "load": os.getloadavg()[0], "hop": {}, "single": [], "batch": {}}
        for clients in clients_list:
            wrk(url, None, [], clients, 2, root, paths=["/api/v3/lds/health"])
            hop, p50, p99 = wrk(url, None, [], clients, args.seconds, root, paths=["/api/v3/lds/health"])
            results["hop"][str(clients)] = hop
            print(f"hop (GET /api/v3/lds/health, {clients} clients): {hop:.0f} req/s  p50 {p50:.3f} ms p99 {p99:.3f} ms")

        print(f"{'set':>5} {'clients':>7} {'pgbench/s':>10} {'ceiling/s':>10} {'API/s':>8} {'raw':>5} {'ceil':>5}"
              f"  {'p50 ms':>7} {'p99 ms':>7}  API CPU/req  PG CPU/lookup API / floor  pgbench CPU  floor time/lookup")
        for kind, names in ADDRESSES.items():
            for clients in clients_list:
                pgbench(stack, names, clients, 2)  # warm
                if args.statements:
                    statements_per_lookup(stack)
                raw, raw_server_us, pgbench_us = pgbench(stack, names, clients, args.seconds)
                floor_statements = statements_per_lookup(stack) if args.statements else []
                wrk(url, token, names, clients, 2, root)
                if args.statements:
                    statements_per_lookup(stack)
                cpu0, server0 = cpu_seconds(api_pid), backend_cpu(stack, "tessera")
                rps, p50, p99 = wrk(url, token, names, clients, args.seconds, root)
                api_us = (cpu_seconds(api_pid) - cpu0) / (rps * args.seconds) * 1e6
                server_us = (backend_cpu(stack, "tessera") - server0) / (rps * args.seconds) * 1e6
                api_statements = statements_per_lookup(stack) if args.statements else []
                ceiling = 1 / (1 / results["hop"][str(clients)] + 1 / raw)
                results["single"].append({"set": kind, "clients": clients, "pgbench": raw, "ceiling": ceiling, "api": rps,
                                          "ratio_raw": rps / raw, "ratio_ceiling": rps / ceiling, "p50_ms": p50,
                                          "p99_ms": p99, "api_cpu_us": api_us, "server_cpu_us": server_us,
                                          "floor_server_cpu_us": raw_server_us, "pgbench_cpu_us": pgbench_us})
                print(f"{kind:>5} {clients:>7} {raw:>10.0f} {ceiling:>10.0f} {rps:>8.0f} {rps / raw:>5.2f} {rps / ceiling:>5.2f}"
                      f"  {p50:>7.3f} {p99:>7.3f}  {api_us:>6.0f} µs  {server_us:>6.0f} / {raw_server_us:.0f} µs"
                      f"  {pgbench_us:>5.0f} µs  {clients / raw * 1e6:>6.0f} µs")
                if args.statements:
                    print("    pgbench, per lookup:", *floor_statements, "    API, per lookup:", *api_statements, sep="\n")
        for kind, names in ADDRESSES.items():
            rate = distinct_batch(stack, token, names, args.batch)
            results["batch"][kind] = rate
            print(f"batch {kind}: {args.batch} distinct addresses per request: {rate:.0f} geocodes/s")
        warehouse_trips, metadata_trips = round_trips(stack, token, ADDRESSES["exact"])
        results["round_trips"] = {"warehouse": warehouse_trips, "metadata": metadata_trips}
        print(f"round trips per geocode: {warehouse_trips:.2f} warehouse + {metadata_trips:.2f} metadata "
              f"(statement log, 200 sequential requests)")
        if args.isolines:
            isoline_bench(stack, token)
        if args.json:
            print(json.dumps(results))
        return 0
    finally:
        stack.stop_all()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
