#!/usr/bin/env python3
"""Vector-tile throughput of Tessera against its raw PostGIS floor, measured in one run.

One deterministic tile list (z0, every z1 tile, then z2-z14 around eight real cities: 202 tiles) is served
three ways, per layer -- the GeoNames demo places (~155k points, `populated_places`) and a synthetic
`bench_points` table of --points points (half uniform over the world, half clustered around the same cities),
and `quadbin-agg`, the same points aggregated into quadbin cells per `{i}` tile (spatialDataType=quadbin over
the geometry column, aggregationResLevel 6: what deck.gl's heatmap/grid layers request), and `h3-agg`, the same
points aggregated into H3 cells (spatialDataType=h3, aggregationResLevel 4; `{i}` is the H3 cell deck.gl's H3 tile
layer asks for the view of each z/x/y: see h3_tile)
-- and per zoom band (--bands, default z0-9 and z10+):

  (a) raw:      maps-api's own tile statements through pgbench (-M prepared, the same text, the same bound
                values: prepared once per connection, bound per tile, as maps-api does);
  (b) tessera:  HTTP GETs of the TileJSON tile URLs (wrk, a Lua script cycling through them) through nginx ->
                FastCGI tessera-maps-api -> PostGIS, nothing cached: the issue's definition. With Varnish in
                front, that is nginx's internal maps-backend server (Varnish's backend), given a loopback
                port in this run's rendered config. (m) is the real miss for reference: the public server
                with `Cache-Control: no-cache` -> Varnish -> the internal server -> maps-api;
  (c) varnish:  the same URLs through Varnish, warm (every tile requested once first) -- only when nginx
                routes maps-api through Varnish (seen as the VCL's X-Cache header); otherwise skipped with
                a note;

at equal concurrency (--clients), plus nginx serving a static file of the mix's mean tile size (what (c)
should come close to) and maps-api's health endpoint (the hop without auth or database). Printed: tiles/s
and the ratios (b)/(a), (c)/(a), (c)/static; p50/p99 latency; CPU per tile of PostgreSQL, maps-api, nginx
and Varnish from /proc/<pid>/stat (children included); parallel workers seen; maps-api's peak RSS (VmHWM).

Which SQL? Each tile is requested once through the API while PostgreSQL logs every statement with its
bound values (log_min_duration_statement = 0, only during that pass), so (a) replays exactly what maps-api
executed: nothing here re-implements Sources/MapsAPI/TileSQL.swift, nothing can drift from it.

Levels: the sql-worker runs, as in production. Before any tile is captured, every layer's precomputed levels
(thinning levels; aggregation levels for the aggregated layers) are built -- their build is queued by the first
TileJSON -- and its TileJSON is asked again past the caches (Cache-Control: no-cache; the interim TileJSON is
cached 10 s). The run stops if that TileJSON still pins the interim tiles (`thinning=sampled` in its tiles URL) or
any captured tile answers `X-Tessera-Thinning-Levels: interim`: (a) and (b) run the statements of the tiles a map
opened now gets, and no build runs beside a measurement. Text values bound to a statement that every tile shares
(a levels statement's key and relation) are pgbench -D variables; numbers are \\set per tile.

CPU figures: the process trees' CPU from /proc, minus their idle consumption (measured once, after waiting for
PostgreSQL to be quiet). A figure that cannot be sampled -- no process, or an idle baseline that is most of what
the run used -- prints n/a and why, never 0.

Plans: both paths log in as the same role, whose plan_cache_mode is set for the run (--plan-cache-mode,
default force_generic_plan). With PostgreSQL's default (auto) a prepared tile statement keeps custom plans
or switches to the generic one depending on the first five tiles a connection happens to run, and custom
plans of dense tiles start parallel workers and JIT -- so the two paths would not run the same plans.

Heavy tiles -- those for which maps-api ran more than one statement (over the feature/byte cap, it re-runs
an ordered query) or whose answer is larger than --heavy-kb (size, not time, decides: the mixes stay the
same from run to run on the same data) -- would dominate any mix, so they stay out of the throughput runs
and are timed one by one instead: the API's statement sequence in psql vs one API request, one tile per
zoom, within --heavy-budget seconds.

usage: bench/tiles [--points 5000000] [--clients 2,8] [--seconds 10] [--rounds 2] [--bands 0-9,10-24]
                   [--bin .build/release] [--state DIR] [--layers places,points] [--heavy-kb 512]
                   [--heavy-budget 240] [--plan-cache-mode force_generic_plan|auto|force_custom_plan]
                   [--statements]

--statements lists, per mix and client count, every statement each path ran per tile in every database of the
cluster (pg_stat_statements with track_planning: calls, mean execution and planning time) and the sessions opened:
the CPU columns count the whole cluster (every backend, the metadata database's too), this says what ran in it.

Each measurement (--seconds) is split into --rounds rounds, interleaved (a, b, static, a, b, static, ...), so
that the load of other tenants of a shared machine falls on every path alike. --state keeps the stack (and
the generated points) for the next run; without it everything lives in a temporary directory, removed.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "harness"))
from stack import ADMIN_EMAIL, API_PROGRAMS, PG_BIN, WORKER_PROGRAMS, Stack, StackError, free_port  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import tree_cpu_seconds as tree_cpu  # noqa: E402

PSQL = str(PG_BIN / "psql") if (PG_BIN / "psql").exists() else "psql"
CONNECTION = "carto_dw"
WAREHOUSE_USER = "carto_dw"  # the role maps-api's carto_dw connection logs in as (stack.warehouse_dsn)
SEED = 0.42
POINTS_MARKER = "tessera tiles bench v1: points={n} seed={seed}"
MARKER = "tessera-bench-marker"
HEALTH_PATH = "/api/v3/maps/health"
WRK_LOG: Path | None = None  # every wrk output is appended here (STATE/bench/wrk.log)
SKIP = 2  # seconds at the start of each pgbench run that are not measured (see pgbench())
STATEMENT_TIMEOUT_MS = int(os.environ.get("TESSERA_SQL_STATEMENT_TIMEOUT_MS", "60000"))  # maps-api's default

# Tile centres of the list, and the cluster centres of bench_points. (lon, lat), rounded.
CITIES = [
    ("London", -0.13, 51.51), ("Paris", 2.35, 48.86), ("New York", -74.01, 40.71), ("Tokyo", 139.69, 35.69),
    ("Sao Paulo", -46.63, -23.55), ("Lagos", 3.39, 6.45), ("Mumbai", 72.88, 19.08), ("Sydney", 151.21, -33.87),
]
MAX_ZOOM = 14


class BenchError(RuntimeError):
    pass


@dataclass
class Stmt:
    """One statement maps-api executed on the warehouse, from PostgreSQL's log."""
    text: str
    ms: float
    params: list[str | None] = field(default_factory=list)


@dataclass(eq=False)
class Tile:
    z: int
    x: int
    y: int
    status: int = 0          # of the capture request
    size: int = 0            # body bytes the API sent
    api_ms: float = 0.0      # capture request, wall time
    stmts: list[Stmt] = field(default_factory=list)
    error: str = ""          # a warehouse error during the capture (e.g. statement timeout)
    heavy: str = ""          # why it is timed apart; empty for light tiles
    bytes: int = 0           # raw replay (psql): MVT bytes, features, time
    count: int = -1
    ms: float = 0.0
    path: str = ""           # X-Tessera-Aggregation or X-Tessera-Thinning-Levels of the capture (precomputed, live, interim)
    thinned: bool = False    # the capture said X-Tessera-Thinning: features dropped by design at this zoom

    @property
    def zxy(self) -> str:
        return f"{self.z}/{self.x}/{self.y}"

    @property
    def noquery(self) -> bool:
        """maps-api answered without touching the warehouse (e.g. outside the data's extent)."""
        return self.status in (200, 204) and not self.stmts and not self.error


@dataclass
class Layer:
    key: str
    table: str
    columns: str
    rows: int = 0
    source_id: str = ""
    template: str = ""
    tiles: list[Tile] = field(default_factory=list)
    # Extra handshake parameters: the quadbin aggregation layer (points grouped into cells per tile, `{i}` URLs).
    params: dict[str, str] = field(default_factory=dict)
    levels: str = ""  # what answers its tiles (settle_levels)

    @property
    def light(self) -> list[Tile]:
        return [t for t in self.tiles if not t.heavy and not t.noquery]

    @property
    def heavy(self) -> list[Tile]:
        return [t for t in self.tiles if t.heavy]


# --------------------------------------------------------------------------------------------
# tile list


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ (slippy map) tile holding lon/lat at zoom z."""
    n = 1 << z
    lat_r = math.radians(max(-85.0511, min(85.0511, lat)))
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.log(math.tan(lat_r) + 1.0 / math.cos(lat_r)) / math.pi) / 2.0 * n)
    return min(n - 1, max(0, x)), min(n - 1, max(0, y))


def default_tiles() -> list[tuple[int, int, int]]:
    """z0, every z1 tile, then for z2..z14 the tile of each city and its eastern neighbour (deduplicated,
    in a fixed order): 202 tiles."""
    out: list[tuple[int, int, int]] = [(0, 0, 0)] + [(1, x, y) for y in (0, 1) for x in (0, 1)]
    for z in range(2, MAX_ZOOM + 1):
        for _, lon, lat in CITIES:
            x, y = tile_of(lon, lat, z)
            out += [(z, x, y), (z, (x + 1) % (1 << z), y)]
    seen: set[tuple[int, int, int]] = set()
    return [t for t in out if not (t in seen or seen.add(t))]


def read_tiles(path: Path) -> list[tuple[int, int, int]]:
    tiles = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"(\d+)/(\d+)/(\d+)", line)
        if not m:
            raise BenchError(f"{path}:{n}: expected z/x/y, got {line!r}")
        z, x, y = map(int, m.groups())
        if z > 24 or x >= 1 << z or y >= 1 << z:
            raise BenchError(f"{path}:{n}: tile {line} out of range")
        tiles.append((z, x, y))
    if not tiles:
        raise BenchError(f"{path}: no tiles")
    return list(dict.fromkeys(tiles))


# --------------------------------------------------------------------------------------------
# processes: CPU and memory from /proc


def vm_hwm_mb(pid: int | None) -> float | None:
    if not pid:
        return None
    try:
        m = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    except FileNotFoundError:
        return None
    return int(m.group(1)) / 1024 if m else None


IDLE: dict[str, float] = {}  # CPU seconds per second of each process tree with no load (subtracted)


def wait_quiet(pid: int | None, name: str, limit: float = 0.05, timeout: float = 300) -> None:
    """Waits until the process tree uses less than `limit` CPU seconds per second (e.g. no autovacuum of a freshly
    loaded table, no levels build): the idle baseline is subtracted from every measurement, so background work
    caught in it is taken from every path's figures (one as large as a run's own use showed it as 0 µs per tile)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        c = CPU({"p": pid})
        time.sleep(1)
        used = c.stop()
        if used.get("p", 0.0) / used["_elapsed"] < limit:
            if time.monotonic() - t0 > 2:
                print(f"{name}: quiet after {time.monotonic() - t0:.0f}s of background work", flush=True)
            return
    print(f"{name}: still busy after {timeout:.0f}s (over {limit * 1000:.0f} ms/s of CPU with no load): its CPU figures "
          "may say n/a", flush=True)


class CPU:
    """CPU seconds of several process trees between construction and stop(); "_elapsed" is the wall time."""

    def __init__(self, pids: dict[str, int | None]):
        self.pids = pids
        self.t0 = {k: tree_cpu(p) for k, p in pids.items()}
        self.w0 = time.monotonic()

    def stop(self) -> dict[str, float]:
        used = {k: tree_cpu(p) - self.t0[k] for k, p in self.pids.items() if p}
        used["_elapsed"] = time.monotonic() - self.w0
        return used


class ParallelSampler:
    """Mean number of active parallel workers (pg_stat_activity, every 0.25 s from one superuser session)
    while a measurement runs: shows whether tile statements run custom plans with a Gather node."""

    def __init__(self, stack: Stack):
        self.p = subprocess.Popen([PSQL, "-X", "-q", "-A", "-t", "-d", stack.dsn("postgres", "postgres")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, bufsize=1)
        self.samples: list[int] = []
        self.running = False
        self.thread: threading.Thread | None = None

    def _run(self) -> None:
        assert self.p.stdin and self.p.stdout
        while self.running:
            self.p.stdin.write("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker';\n")
            self.p.stdin.flush()
            line = self.p.stdout.readline()
            if not line:
                return
            self.samples.append(int(line.strip() or 0))
            time.sleep(0.25)

    def start(self) -> None:
        self.samples, self.running = [], True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self) -> float:
        self.running = False
        if self.thread:
            self.thread.join(5)
        return sum(self.samples) / len(self.samples) if self.samples else float("nan")

    def close(self) -> None:
        self.running = False
        if self.p.poll() is None:
            assert self.p.stdin
            self.p.stdin.close()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()


class StatementStats:
    """--statements: every statement PostgreSQL ran during one measurement, in every database of the cluster
    (pg_stat_statements with track_planning), per tile -- the tile statement's calls are the tiles --, and the
    sessions opened (pg_stat_database: connection churn). What the CPU figures cannot say: which statements
    beside the tile's own a path adds, how often each is planned, and whether the metadata database is asked."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.sessions: dict[str, int] = {}

    @staticmethod
    def enable(stack: Stack) -> None:
        """Loads pg_stat_statements into the cluster (a restart, the first time) and turns track_planning on."""
        if "pg_stat_statements" not in stack.psql("SHOW shared_preload_libraries"):
            stack.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            stack.restart_postgres()
        stack.psql("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
        stack.psql("SELECT pg_reload_conf()")
        stack.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    @staticmethod
    def disable(stack: Stack) -> None:
        """Takes effect at the cluster's next start (a --state run keeps its cluster)."""
        stack.psql("ALTER SYSTEM RESET shared_preload_libraries")
        stack.psql("ALTER SYSTEM RESET pg_stat_statements.track_planning")

    def _sessions(self) -> dict[str, int]:
        out = self.stack.psql("SELECT datname, sessions FROM pg_stat_database WHERE datname IS NOT NULL")
        return {d: int(n) for d, n in (line.split("|") for line in out.splitlines() if line)}

    def start(self) -> None:
        self.stack.psql("SELECT pg_stat_statements_reset()")
        self.sessions = self._sessions()

    def stop(self) -> list[str]:
        """Report lines: database, calls, mean execution and planning time per statement, per tile."""
        rows = self.stack.psql("""
            SELECT d.datname, s.calls, s.total_exec_time / s.calls, s.plans,
                   CASE WHEN s.plans > 0 THEN s.total_plan_time / s.plans ELSE 0 END,
                   regexp_replace(s.query, '\\s+', ' ', 'g')
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE s.calls > 0  -- planned, never executed (e.g. an EXPLAIN's plan): nothing per tile
            ORDER BY s.calls * s.total_exec_time DESC""")
        stats = [r.split("|", 5) for r in rows.splitlines() if r]
        tiles = max([int(r[1]) for r in stats if is_tile_statement(r[5])] or [0])
        if not tiles:
            return ["    (no tile statement ran)"]
        lines = [f"    {'database':<9} {'calls/tile':>10} {'exec µs':>8} {'plans/tile':>10} {'plan µs':>8}  statement"]
        for db, calls, exec_ms, plans, plan_ms, text in stats:
            if int(calls) / tiles >= 0.001:
                lines.append(f"    {db:<9} {int(calls) / tiles:>10.3f} {float(exec_ms) * 1000:>8.1f} {int(plans) / tiles:>10.3f} "
                             f"{float(plan_ms) * 1000:>8.1f}  {text[:90]}")
        opened = {d: n - self.sessions.get(d, 0) for d, n in self._sessions().items()}
        lines.append("    sessions opened: " + ", ".join(f"{d} {n}" for d, n in sorted(opened.items()) if n) + f" (over {tiles:,} tiles)")
        return lines


class Series:
    """One measurement over several rounds: mean rate and latencies, total requests and CPU."""

    def __init__(self) -> None:
        self.rates: list[float] = []
        self.p50s: list[float] = []
        self.p99s: list[float] = []
        self.n = 0
        self.cpu: dict[str, float] = {}
        self.parallel: list[float] = []
        self.statements: list[str] = []  # --statements: StatementStats of the first round

    def add(self, rate: float, n: int, cpu: dict[str, float], p50: float | None = None, p99: float | None = None) -> None:
        self.rates.append(rate)
        self.n += n
        for k, v in cpu.items():
            self.cpu[k] = self.cpu.get(k, 0.0) + v  # "_elapsed" adds up the wall time
        if p50 is not None:
            self.p50s.append(p50)
        if p99 is not None:
            self.p99s.append(p99)

    @property
    def rate(self) -> float:
        return sum(self.rates) / len(self.rates)

    @property
    def p50(self) -> float | None:
        return sum(self.p50s) / len(self.p50s) if self.p50s else None

    @property
    def p99(self) -> float | None:
        return sum(self.p99s) / len(self.p99s) if self.p99s else None

    def sampled(self, key: str) -> tuple[float, str]:
        """CPU µs per request of one process tree, its idle consumption over the same wall time subtracted, or nan
        and why not: a figure that is mostly the background's (or none at all) says nothing about the path."""
        if key not in self.cpu:
            return float("nan"), "no process to sample (not started)"
        if not self.n:
            return float("nan"), "no request measured"
        used, idle = self.cpu[key], IDLE.get(key, 0.0) * self.cpu.get("_elapsed", 0.0)
        if used <= 0:
            return float("nan"), "no CPU counted in /proc for the process tree"
        if idle > 0.5 * used:
            return float("nan"), (f"the background's CPU at idle ({IDLE[key] * 1000:.0f} ms/s, subtracted) is "
                                  f"{idle / used:.0%} of what the run used")
        return (used - idle) / self.n * 1e6, ""

    def us(self, key: str) -> float:
        return self.sampled(key)[0]

    def cpu_text(self, key: str) -> str:
        """The CPU figure of one process tree for the report: µs per request, or n/a and why."""
        v, why = self.sampled(key)
        return f"{v:.0f}" if v == v else f"n/a ({why})"


# --------------------------------------------------------------------------------------------
# the stack, data and the API


def tool(bin_dir: Path, stack: Stack, *args: str) -> str:
    r = subprocess.run([str(bin_dir / "tessera"), *args], env={**os.environ, **stack.env},
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise BenchError(f"tessera {args[0]} failed ({r.returncode}): {(r.stderr or r.stdout).strip()}")
    return r.stdout


def psql_stream(dsn: str, script: str, label: str, timeout: float) -> None:
    """Run a psql script, echoing each output line (progress) with the elapsed time."""
    t0 = time.monotonic()
    p = subprocess.Popen([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", "-"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert p.stdin and p.stdout
    p.stdin.write(script)
    p.stdin.close()
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    tail: list[str] = []
    try:
        for line in p.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-20:]
            print(f"  {label} {time.monotonic() - t0:6.1f}s  {line}", flush=True)
        rc = p.wait()
    finally:
        killer.cancel()
    if rc != 0:
        raise BenchError(f"{label} failed (exit {rc}{', killed after the timeout' if rc < 0 else ''}):\n"
                         + "\n".join(tail))


def ensure_points(stack: Stack, n: int) -> None:
    """bench_points(id bigint primary key, value float8, category text, geom geometry(Point, 4326)): n points
    from random() after setseed(0.42), half spread uniformly over the world, half clustered around CITIES
    (radius up to 8 degrees, density ~ 1/r, so city tiles stay dense down to z14); GiST index, ANALYZE.
    Reused when the table already holds this n and seed (see --state)."""
    marker = POINTS_MARKER.format(n=n, seed=SEED)
    current = stack.psql("SELECT coalesce(obj_description(to_regclass('public.bench_points'), 'pg_class'), '')",
                         dbname="carto_dw")
    if current == marker:
        print(f"bench_points: reusing {n:,} points", flush=True)
        return
    lons = ",".join(f"{c[1]}" for c in CITIES)
    lats = ",".join(f"{c[2]}" for c in CITIES)
    k = len(CITIES)
    batches = 10
    step = max(1, math.ceil(n / batches))
    inserts = []
    for lo in range(1, n + 1, step):
        hi = min(n, lo + step - 1)
        # One session, one seed, no parallel workers: random() is drawn in the same order on every run.
        inserts.append(f"""
INSERT INTO bench_points (id, value, category, geom)
SELECT g, r1 * 1000, (ARRAY['retail','food','services','leisure'])[1 + floor(r2 * 4)::int],
       CASE WHEN r3 < 0.5
            THEN ST_SetSRID(ST_MakePoint(-180 + 360 * r4, -85 + 170 * r5), 4326)
            ELSE ST_SetSRID(ST_MakePoint(
                   (ARRAY[{lons}]::float8[])[1 + floor((r3 - 0.5) * {2 * k})::int] + 8 * r4 * cos(2 * pi() * r5),
                   greatest(-85, least(85, (ARRAY[{lats}]::float8[])[1 + floor((r3 - 0.5) * {2 * k})::int]
                                            + 8 * r4 * sin(2 * pi() * r5)))), 4326)
       END
FROM (SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5
      FROM generate_series({lo}, {hi}) AS g OFFSET 0) AS s;
\\echo inserted {hi:,} of {n:,} points ({round(hi * 100 / n)}%)""")
    script = f"""
SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
SET maintenance_work_mem = '512MB';
DROP TABLE IF EXISTS bench_points;
CREATE TABLE bench_points (id bigint NOT NULL, value float8, category text, geom geometry(Point, 4326));
SELECT setseed({SEED}) \\g /dev/null
{''.join(inserts)}
\\echo building the primary key
ALTER TABLE bench_points ADD PRIMARY KEY (id);
\\echo building the GiST index
CREATE INDEX bench_points_geom_idx ON bench_points USING gist (geom);
\\echo analyzing
ANALYZE bench_points;
COMMENT ON TABLE bench_points IS '{marker}';
\\echo done
"""
    print(f"bench_points: generating {n:,} points (seed {SEED}) ...", flush=True)
    psql_stream(stack.warehouse_dsn, script, "bench_points", timeout=3 * 3600)


UNCACHED: dict[str, str] = {}  # request headers of path (b): Cache-Control: no-cache when Varnish is in front


def http_get(url: str, token: str | None, timeout: float = 120, headers: dict[str, str] | None = None
             ) -> tuple[int, dict[str, str], bytes]:
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        c.request("GET", u.path + ("?" + u.query if u.query else ""),
                  headers={**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def handshake(stack: Stack, token: str, layer: Layer, fresh: bool = False) -> None:
    """Instantiate the source like a client does and keep the TileJSON's tile URL template. `fresh`: past every
    cache (Cache-Control: no-cache, which Varnish's VCL and maps-api both honour): an interim TileJSON is cached
    10 s, so one asked again just after the levels' build could still pin the interim tiles."""
    uncached = {"Cache-Control": "no-cache"} if fresh else {}
    q = urllib.parse.urlencode({"name": layer.table, **({"columns": layer.columns} if layer.columns else {}), **layer.params})
    url = f"{stack.base_url}/api/v3/maps/{CONNECTION}/table?{q}"
    status, _, body = http_get(url, token, headers=uncached)
    if status != 200:
        raise BenchError(f"handshake {url} -> {status}: {body[:400]!r}")
    hs = json.loads(body)
    layer.rows = int(hs.get("nrows") or 0)
    tilejson_url = hs["tilejson"]["url"][0]
    t0 = time.monotonic()
    status, _, body = http_get(tilejson_url, token, timeout=STATEMENT_TIMEOUT_MS / 1000 + 30, headers=uncached)
    # An aggregated layer's tilestats group the whole table until its precomputed levels exist: on millions of
    # points that can pass the statement timeout (429), and the request queued their build; ask again.
    while status == 429 and layer.params.get("aggregationExp") and time.monotonic() - t0 < 3600:
        time.sleep(5)
        status, _, body = http_get(tilejson_url, token, timeout=STATEMENT_TIMEOUT_MS / 1000 + 30,
                                   headers={"Cache-Control": "no-cache"})
    if layer.params.get("aggregationExp"):
        print(f"[{layer.key}] TileJSON answered {status} after {time.monotonic() - t0:.0f}s", flush=True)
    if status != 200:
        raise BenchError(f"TileJSON {tilejson_url} -> {status}: {body[:400]!r}")
    layer.template = json.loads(body)["tiles"][0]
    layer.source_id = urllib.parse.parse_qs(urllib.parse.urlsplit(layer.template).query)["source"][0]


def prepare_levels(stack: Stack, token: str, layer: Layer, base: str, timeout: float = 3600) -> None:
    """Requests the layer's z0 tile (past the http-cache) until maps-api answers it from precomputed levels: the first
    request queued their build on the sql-worker. Tiles run before that would measure the live grouping."""
    t0 = time.monotonic()
    url = tile_url(layer, Tile(0, 0, 0), base)
    while True:
        try:
            status, headers, body = http_get(url, token, timeout=STATEMENT_TIMEOUT_MS / 1000 + 30, headers={"Cache-Control": "no-cache"})
        except http.client.IncompleteRead as e:
            print(f"[{layer.key}] z0 tile: the response was cut short ({e!r}); asking again", flush=True)
            time.sleep(2)
            continue
        if status not in (200, 204):
            raise BenchError(f"[{layer.key}] z0 tile -> {status}: {body[:300]!r}")
        if headers.get("x-tessera-aggregation") == "precomputed":
            print(f"[{layer.key}] precomputed levels ready after {time.monotonic() - t0:.0f}s", flush=True)
            return
        if time.monotonic() - t0 > timeout:
            raise BenchError(f"[{layer.key}] precomputed levels not built within {timeout:.0f}s (see the sql-worker's log)")
        time.sleep(2)


# ThinningLevels.interimParameter: a TileJSON given while a table's thinning levels are not built pins its tiles to
# the interim ones (sampled per request, never read from the levels, even once they exist) with this parameter.
INTERIM = "&thinning=sampled"


def wait_for_thinning_levels(stack: Stack, token: str, layer: Layer, base: str, timeout: float = 3600) -> float | None:
    """Asks the layer's z0 tile (past the caches) until the precomputed thinning levels answer it; the seconds that
    took, or None when maps-api does not use levels for this layer (no X-Tessera-Thinning-Levels header: an older
    build, or a table not eligible). The build is queued by the interim TileJSON (or the first live tile) and run by
    the sql-worker. While the TileJSON's tiles are the interim ones, the build is watched in the warehouse's catalogue
    instead: the unpinned tile would rank every row per request until then (past the statement timeout at 5M points,
    and on the cores the build needs)."""
    t0 = time.monotonic()
    pinned = INTERIM in layer.template
    url = tile_url(layer, Tile(0, 0, 0), base).replace(INTERIM, "")
    table = f'"public"."{layer.table}"'
    while True:
        if time.monotonic() - t0 > timeout:
            raise BenchError(f"[{layer.key}] thinning levels not built within {timeout:.0f}s (see the sql-worker's log)")
        if pinned:
            try:
                built = stack.psql("SELECT count(*) FROM carto.tessera_agg_levels WHERE relation LIKE 'tessera\\_thin\\_%' "
                                   f"AND source_table = '{table}' AND built_at > now() - interval '{timeout:.0f} seconds'",
                                   dbname="carto_dw")
            except StackError:  # no catalogue yet
                built = "0"
            if built.strip() == "0":
                time.sleep(1)
                continue
        status, headers, data = http_get(url, token, timeout=STATEMENT_TIMEOUT_MS / 1000 + 30, headers={"Cache-Control": "no-cache"})
        if status == 429 and pinned:  # a row of an older build, stale: the tile went per request
            time.sleep(1)
            continue
        if status not in (200, 204):
            raise BenchError(f"[{layer.key}] z0 tile -> {status}: {data[:300]!r}")
        path = headers.get("x-tessera-thinning-levels")
        if path is None:
            return None
        if path == "precomputed":
            return time.monotonic() - t0
        time.sleep(1)


def settle_levels(stack: Stack, token: str, layer: Layer, base: str) -> str:
    """Before the layer's tiles are captured (their statements become (a)'s) and measured: waits for its levels
    (aggregation or thinning), asks its TileJSON again past the caches and checks that its tiles are no longer the
    interim ones (a TileJSON fetched before the build keeps pinning them). Returns what answers its tiles."""
    if layer.params.get("aggregationExp"):
        prepare_levels(stack, token, layer, base)
        return "precomputed aggregation levels"
    built = wait_for_thinning_levels(stack, token, layer, base)
    handshake(stack, token, layer, fresh=True)
    if INTERIM in layer.template:
        raise BenchError(f"[{layer.key}] the TileJSON still pins interim tiles after the levels' build: {layer.template}")
    status, headers, body = http_get(tile_url(layer, Tile(0, 0, 0), base), token,
                                     timeout=STATEMENT_TIMEOUT_MS / 1000 + 30, headers={"Cache-Control": "no-cache"})
    if status not in (200, 204) or headers.get("x-tessera-thinning-levels") == "interim":
        raise BenchError(f"[{layer.key}] z0 tile of the new TileJSON -> {status}, X-Tessera-Thinning-Levels "
                         f"{headers.get('x-tessera-thinning-levels')!r}: {body[:200]!r}")
    what = "per request (no thinning levels)" if built is None else f"precomputed thinning levels (ready after {built:.0f}s)"
    print(f"[{layer.key}] tiles from {what}; TileJSON asked again past the caches: not interim", flush=True)
    return what


def tile_url(layer: Layer, t: Tile, base: str | None = None) -> str:
    url = layer.template.replace("{z}", str(t.z)).replace("{x}", str(t.x)).replace("{y}", str(t.y))
    url = url.replace("{i}", h3_tile(t.z, t.x, t.y) if layer.params.get("spatialDataType") == "h3" else quadbin_hex(t.z, t.x, t.y))
    if base:
        u = urllib.parse.urlsplit(url)
        url = base.rstrip("/") + u.path + ("?" + u.query if u.query else "")
    return url


def h3_tile(z: int, x: int, y: int) -> str:
    """The H3 tile deck.gl's H3Tileset2D requests for a view of tile z/x/y: the cell holding the tile's centre
    at getHexagonResolution's resolution (latitude term left out): max(0, floor(2z/3) - 2)."""
    try:
        import h3  # PyPI h3, as Tests/h3 uses
    except ImportError:
        raise BenchError("the h3-agg layer needs the h3 Python package (pip install h3)") from None
    n = 2 ** z
    lon = (x + 0.5) / n * 360 - 180
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 0.5) / n))))
    return h3.latlng_to_cell(lat, lon, max(0, math.floor(2 * z / 3) - 2))


def quadbin_hex(z: int, x: int, y: int) -> str:
    """The quadbin cell of tile z/x/y as deck.gl fills `{i}` (16 hex digits)."""
    def spread(v: int) -> int:  # the bits of v at the even positions of 64
        out = 0
        for b in range(32):
            out |= ((v >> b) & 1) << (2 * b)
        return out
    morton = spread(x << (32 - z)) | (spread(y << (32 - z)) << 1) if z else 0
    cell = 0x4000000000000000 | (1 << 59) | (z << 52) | (morton >> 12) | (0xFFFFFFFFFFFFF >> (2 * z))
    return f"{cell:016x}"


def tile_path(layer: Layer, t: Tile) -> str:
    u = urllib.parse.urlsplit(tile_url(layer, t))
    return u.path + ("?" + u.query if u.query else "")


# --------------------------------------------------------------------------------------------
# capture: maps-api's exact statements and bound values, from PostgreSQL's log

_LOG_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(\d+)\] (?:(\S*)@(\S*) )?([A-Z0-9]+):\s+(.*)$")
_PARAM = re.compile(r"\$(\d+) = (NULL|'((?:[^']|'')*)')")


def set_statement_logging(stack: Stack, on: bool) -> None:
    stack.psql("ALTER SYSTEM SET log_min_duration_statement = 0" if on else
               "ALTER SYSTEM RESET log_min_duration_statement")
    stack.psql("SELECT pg_reload_conf()")
    time.sleep(0.5)  # backends pick the reload up asynchronously, at their next command


class Marker:
    """A psql session (superuser, logging its statements) that writes `MARKER n` into PostgreSQL's log and
    waits until it is there: every statement logged after it, until the next marker, belongs to request n.
    (maps-api's execute is logged before libpq returns to it, i.e. before the HTTP response.)"""

    def __init__(self, stack: Stack):
        self.p = subprocess.Popen([PSQL, "-X", "-q", "-A", "-t", "-d", stack.dsn("carto_dw", "postgres")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  bufsize=1)
        self.mark(-1)

    def mark(self, n: int) -> None:
        assert self.p.stdin and self.p.stdout
        self.p.stdin.write(f"SET log_min_duration_statement = 0; SELECT '{MARKER} {n}';\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline().strip()
        if line != f"{MARKER} {n}":
            raise BenchError(f"marker session: unexpected output {line!r}")

    def close(self) -> None:
        if self.p.poll() is None:
            assert self.p.stdin
            self.p.stdin.close()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()


def is_tile_statement(text: str) -> bool:
    """A tile statement (not e.g. a per-connection lookup or the session reset): vector tiles, or cells as JSON."""
    t = text.lower()
    return "st_asmvt" in t or "json_build_object('id'" in t or "string_agg(t.__json" in t


def parse_log(text: str) -> dict[int, tuple[list[Stmt], list[str]]]:
    """Marker number -> (statements maps-api executed as WAREHOUSE_USER, errors) in log order."""
    entries: list[list] = []
    for line in text.splitlines():
        m = _LOG_ENTRY.match(line)
        if m:
            entries.append([int(m.group(1)), m.group(2) or "", m.group(4), m.group(5)])
        elif entries:
            entries[-1][3] += "\n" + line
    out: dict[int, tuple[list[Stmt], list[str]]] = {}
    current: int | None = None
    last_execute: dict[int, Stmt | None] = {}
    for pid, user, level, msg in entries:
        if user == "postgres" and MARKER in msg:
            m = re.search(re.escape(MARKER) + r" (-?\d+)", msg)
            current = int(m.group(1)) if m else None
            if current is not None:
                out.setdefault(current, ([], []))
            continue
        if current is None or user != WAREHOUSE_USER:
            continue
        if level == "LOG":
            m = re.match(r"duration: ([\d.]+) ms  execute [^:]+: (.*)", msg, re.S)
            if m and is_tile_statement(m.group(2)):
                s = Stmt(text=m.group(2), ms=float(m.group(1)))
                out[current][0].append(s)
                last_execute[pid] = s
            else:
                last_execute[pid] = None  # parse/bind/other: their DETAIL lines are not ours
        elif level == "DETAIL" and msg.startswith("parameters: ") and last_execute.get(pid) is not None:
            s = last_execute[pid]
            s.params = []
            for pm in _PARAM.finditer(msg):
                n = int(pm.group(1))
                s.params += [None] * (n - len(s.params))
                s.params[n - 1] = None if pm.group(2) == "NULL" else pm.group(3).replace("''", "'")
            last_execute[pid] = None
        elif level in ("ERROR", "FATAL"):
            out[current][1].append(msg.splitlines()[0])
    return out


def capture(stack: Stack, token: str, layers: list[Layer], tiles_xyz: list[tuple[int, int, int]], base: str | None = None) -> None:
    """Request every tile once through the API with statement logging on; keep status, size, time and the
    warehouse statements (text, bound values, server time) of each."""
    log = stack.log_path("postgres")
    start = log.stat().st_size
    set_statement_logging(stack, True)
    marker = Marker(stack)
    order: list[Tile] = []
    try:
        for layer in layers:
            layer.tiles = [Tile(z, x, y) for z, x, y in tiles_xyz]
            t0 = time.monotonic()
            for t in layer.tiles:
                marker.mark(len(order))
                order.append(t)
                t1 = time.perf_counter()
                try:
                    t.status, headers, body = http_get(tile_url(layer, t, base), token, timeout=STATEMENT_TIMEOUT_MS / 1000 + 30,
                                                       headers=UNCACHED)
                    t.size = len(body)
                    t.path = headers.get("x-tessera-aggregation", "") or headers.get("x-tessera-thinning-levels", "")
                    t.thinned = "x-tessera-thinning" in headers
                except (OSError, http.client.HTTPException) as e:
                    t.status, t.error = 0, f"request failed: {e!r}"
                t.api_ms = (time.perf_counter() - t1) * 1000
                if t.api_ms > 2000:
                    print(f"  [{layer.key}] capture: {t.zxy} took {t.api_ms / 1000:.1f}s (status {t.status})", flush=True)
            print(f"[{layer.key}] captured {len(layer.tiles)} tiles through the API in {time.monotonic() - t0:.0f}s",
                  flush=True)
            if layer.params.get("aggregationExp"):
                low = sorted(t.api_ms for t in layer.tiles if t.z <= 6 and t.status in (200, 204))
                paths = {p: sum(1 for t in layer.tiles if t.path == p) for p in ("precomputed", "live")}
                p95 = low[min(len(low) - 1, math.ceil(0.95 * len(low)) - 1)] if low else float("nan")
                print(f"[{layer.key}] z0-6 uncached, one request at a time: {len(low)} tiles, p50 {low[len(low) // 2] if low else 0:.1f} ms, "
                      f"p95 {p95:.1f} ms, max {low[-1] if low else 0:.1f} ms; answered from precomputed levels "
                      f"{paths['precomputed']}, live {paths['live']}", flush=True)
        marker.mark(len(order))
    finally:
        marker.close()
        set_statement_logging(stack, False)
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read().decode("utf-8", "replace")
    parsed = parse_log(text)
    for i, t in enumerate(order):
        stmts, errors = parsed.get(i, ([], []))
        t.stmts = stmts
        if errors:
            t.error = "; ".join(errors)
        elif t.status not in (200, 204) and not t.error:
            t.error = f"HTTP {t.status}"
        for s in stmts:
            if re.search(r"\$\d", s.text) and not s.params:
                raise BenchError(f"tile {t.zxy}: statement logged without its parameters:\n{s.text[:300]}")


# --------------------------------------------------------------------------------------------
# raw runs through psql (calibration, heavy tiles)


def bind_literals(s: Stmt) -> str:
    """The statement with its bound values written in as quoted literals (its casts type them)."""
    def value(m: re.Match) -> str:
        v = s.params[int(m.group(1)) - 1]
        return "NULL" if v is None else "'" + v.replace("'", "''") + "'"
    return re.sub(r"\$(\d+)", value, s.text)


def psql_timed(dsn: str, statements: list[Stmt], timeout: float, prepared: bool = True, warm: Stmt | None = None
               ) -> list[tuple[int, int, float] | None]:
    """Run each statement as `SELECT octet_length(mvt), n FROM (<statement>)` in one psql session with \\timing;
    returns (bytes, count, ms) per statement, None where it failed (e.g. the statement timeout).
    prepared: PREPARE the text and EXECUTE it with the bound values, as maps-api does -- so it gets the same
    plan policy (the role's plan_cache_mode); otherwise the values are written in as literals (a custom plan).
    `warm` runs first, untimed: a new backend spends ~35 ms loading PostGIS and initialising PROJ on its
    first ST_Transform, which maps-api's pooled connections have long paid."""
    def wrap(text: str) -> str:
        return f"SELECT coalesce(octet_length(q.mvt), 0), q.n FROM ({text}) AS q(mvt, n)"

    def value(v: str | None) -> str:
        return "NULL" if v is None else "'" + v.replace("'", "''") + "'"

    script = ["\\timing on", "\\echo @@-1"]  # output before the first marker is not recorded
    if warm:
        script.append(wrap(bind_literals(warm)) + ";")
    names: dict[str, str] = {}
    if prepared:
        for st in statements:
            if st.text not in names:
                names[st.text] = f"bench_{len(names)}"
                script.append(f"PREPARE {names[st.text]} AS {wrap(st.text)};")
    for i, st in enumerate(statements):
        script.append(f"\\echo @@{i}")
        script.append(f"EXECUTE {names[st.text]}({', '.join(value(v) for v in st.params)});" if prepared
                      else wrap(bind_literals(st)) + ";")
    env = {**os.environ, "PGOPTIONS": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"}
    r = subprocess.run([PSQL, "-X", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=0", "-d", dsn, "-f", "-"],
                       input="\n".join(script) + "\n", capture_output=True, text=True, env=env, timeout=timeout)
    out: list[tuple[int, int, float] | None] = [None] * len(statements)
    current, row = -1, None
    for line in r.stdout.splitlines():
        if line.startswith("@@"):
            current, row = int(line[2:]), None
        elif m := re.fullmatch(r"(\d+)\|(\d+)", line):
            row = (int(m.group(1)), int(m.group(2)))
        elif (m := re.match(r"Time: ([\d.]+) ms", line)) and current >= 0 and row is not None:
            out[current] = (row[0], row[1], float(m.group(1)))
    return out


def classify(layer: Layer, heavy_kb: float) -> None:
    for t in layer.tiles:
        if t.error:
            t.heavy = "error"
        elif len(t.stmts) > 1:
            t.heavy = "cap"  # over the feature or byte budget: maps-api re-ran an ordered query
        elif t.size > heavy_kb * 1024:
            t.heavy = "big"


def calibrate(stack: Stack, layer: Layer) -> list[str]:
    """Replay each light tile's statement once in psql: bytes, features, time; the sizes must match the API's."""
    light = layer.light
    warm = light[0].stmts[0] if light else None
    res = psql_timed(stack.warehouse_dsn, [t.stmts[0] for t in light],
                     timeout=STATEMENT_TIMEOUT_MS / 1000 * (len(light) + 1) + 60, warm=warm)
    differ = []
    for t, r in zip(light, res):
        if r is None:
            raise BenchError(f"[{layer.key}] replaying tile {t.zxy} failed in psql:\n{bind_literals(t.stmts[0])[:500]}")
        t.bytes, t.count, t.ms = r
        if not same_size(t.size, t.bytes):
            differ.append(f"{t.zxy} API {t.size} B vs raw {t.bytes} B")
    if differ:
        return [f"[{layer.key}] WARNING {len(differ)} tiles differ in size between the API and the replayed "
                f"statement: {', '.join(differ[:5])}"]
    return [f"[{layer.key}] replayed statements: all {len(light)} light tiles match the API's responses in size"]


def same_size(api: int, raw: int) -> bool:
    """maps-api answers 204 for an empty tile; otherwise MVT sizes of the same features may differ by a few
    bytes (tag indices are varints; their size depends on the order rows arrive in, i.e. on the plan)."""
    return abs(api - raw) <= max(16, 0.02 * max(api, raw)) or (api == 0 and raw <= 16)


# --------------------------------------------------------------------------------------------
# load generators


NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def pgbench_value(v: str | None, where: str) -> str:
    if v is None or not NUMBER.fullmatch(v):
        raise BenchError(f"{where}: bound value {v!r} is not a number; pgbench's \\set can only replay numbers "
                         "(and -D only a text value that every tile of the statement shares)")
    return v


def write_pgbench_scripts(d: Path, name: str, tiles: list[Tile]) -> list[str]:
    """One script per statement text (normally one per layer) holding every light tile: \\set k picks a tile
    at random, a balanced tree of \\if sets its values (8 comparisons for 200 tiles), and the statement keeps
    them as variables (:p1, :p2, ...), which -M prepared sends as bound parameters. So, like maps-api, each
    connection prepares the statement once and binds it per tile -- which also gives it maps-api's plan-cache
    behaviour (custom plans for the first five executions, then usually the generic plan). A text value that is
    the same for every tile of the statement (a precomputed levels statement's key, relation and table names)
    is a variable given with -D (\\set takes numbers only), bound like the others."""
    groups: dict[str, list[Tile]] = {}
    for t in sorted(tiles, key=lambda t: (t.z, t.x, t.y)):
        groups.setdefault(t.stmts[0].text, []).append(t)
    if len(groups) > 128:
        raise BenchError(f"[{name}] {len(groups)} different statement texts; pgbench takes at most 128 scripts")
    args = []
    for i, (text, group) in enumerate(groups.items()):
        lines = [f"\\set k random(0, {len(group) - 1})"]
        constant = {}  # parameter number -> -D variable name
        for n, v in enumerate(group[0].stmts[0].params, 1):
            if v is not None and not NUMBER.fullmatch(v) and all(t.stmts[0].params[n - 1] == v for t in group):
                constant[n] = f"s{i}p{n}"
                args += ["-D", f"{constant[n]}={v}"]

        def tree(lo: int, hi: int) -> None:
            if hi - lo == 1:
                t = group[lo]
                lines.extend(f"\\set p{n} {pgbench_value(v, t.zxy)}" for n, v in enumerate(t.stmts[0].params, 1)
                             if n not in constant)
                return
            mid = (lo + hi) // 2
            lines.append(f"\\if :k < {mid}")
            tree(lo, mid)
            lines.append("\\else")
            tree(mid, hi)
            lines.append("\\endif")

        tree(0, len(group))
        lines.append(re.sub(r"\$(\d+)", lambda m: f":{constant.get(int(m.group(1)), 'p' + m.group(1))}", text) + ";")
        path = d / f"{name}-{i}.sql"
        path.write_text("\n".join(lines) + "\n")
        args += ["-f", f"{path}@{len(group)}"]
    return args


def pgbench(stack: Stack, scripts: list[str], clients: int, seconds: int, cpu_pids: dict[str, int | None]
            ) -> tuple[float, int, dict[str, float]]:
    """pgbench for `seconds` after SKIP unmeasured seconds: every pgbench connection is a new backend that
    spends ~35 ms loading PostGIS/PROJ on its first tile and plans its first five executions one by one
    (custom plans: on dense tiles with JIT compilation and parallel workers), which maps-api's pooled
    connections paid long ago. Returns (tiles/s, tiles, CPU seconds of `cpu_pids`) over the measured part,
    aligned on the -P 1 progress reports."""
    cmd = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients), "-T", str(seconds + SKIP),
           "-P", "1", "--random-seed=42", *scripts, stack.warehouse_dsn]
    env = {**os.environ, "PGOPTIONS": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killer = threading.Timer(seconds + 120, p.kill)
    killer.start()
    try:
        assert p.stderr and p.stdout
        progress: list[float] = []
        cpu, errors = None, []
        for line in p.stderr:
            m = re.match(r"progress: ([\d.]+) s, ([\d.]+) tps", line)
            if not m:
                errors.append(line)
                continue
            progress.append(float(m.group(2)))
            if len(progress) == SKIP:
                cpu = CPU(cpu_pids)  # from here on
        out = p.stdout.read()
        rc = p.wait()
    finally:
        killer.cancel()
    time.sleep(0.5)  # let the postmaster reap pgbench's backends: their CPU moves into its cutime/cstime
    done = re.search(r"number of transactions actually processed: (\d+)", out)
    if rc != 0 or not done or cpu is None or len(progress) <= SKIP:
        raise BenchError(f"pgbench failed ({rc}):\n{out[-2000:]}\n{''.join(errors)[-2000:]}")
    used = cpu.stop()
    n = int(done.group(1)) - int(round(sum(progress[:SKIP])))
    return sum(progress[SKIP:]) / len(progress[SKIP:]), n, used


def write_wrk_script(d: Path, name: str, paths: list[str]) -> Path:
    """Each wrk thread (one connection each) cycles through all paths from its own starting offset. The paths go in
    a fixed shuffled order: a run shorter than one pass over a mix of slow tiles (z0-9 of 5M points: ~60 requests
    per round of ~175 tiles) saw only the stretch after each offset of a list sorted by zoom, not the mix that
    pgbench draws from at random."""
    paths = paths[:]
    random.Random(42).shuffle(paths)
    body = ",\n".join("  " + json.dumps(p) for p in paths)
    lua = f"""-- generated by bench/tiles_bench.py
local paths = {{
{body}
}}
local n = #paths
local next_id = 0
function setup(thread)
  thread:set("offset", next_id * 7919)
  next_id = next_id + 1
end
local i = 0
function init(args)
  i = offset or 0
end
function request()
  i = i + 1
  return wrk.format(nil, paths[(i % n) + 1])
end
"""
    path = d / f"{name}.lua"
    path.write_text(lua)
    return path


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        print(f"warning: cannot read wrk latency {text!r}", file=sys.stderr)
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[m.group(2)]


@dataclass
class WrkResult:
    rps: float
    requests: int
    p50: float
    p99: float


def wrk(base: str, token: str | None, script: Path | None, clients: int, seconds: int, path: str = "/",
        headers: dict[str, str] | None = None) -> WrkResult:
    cmd = ["wrk", "-t", str(clients), "-c", str(clients), "-d", f"{seconds}s", "--timeout", "90s", "--latency"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    if script:
        cmd += ["-s", str(script)]
    cmd.append(base.rstrip("/") + path)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    out = r.stdout
    if WRK_LOG:
        with open(WRK_LOG, "a") as f:
            f.write(f"$ {' '.join(c if 'Bearer' not in c else 'Authorization: Bearer ***' for c in cmd)}\n{out}\n")
    if r.returncode != 0 or "Requests/sec" not in out:
        raise BenchError(f"wrk failed ({r.returncode}):\n{out}\n{r.stderr}")
    if "Non-2xx" in out or "Socket errors" in out:
        raise BenchError(f"wrk saw errors ({cmd[-1]}{' with ' + script.name if script else ''}):\n{out}")
    return WrkResult(rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
                     requests=int(re.search(r"(\d+) requests in", out).group(1)),
                     p50=_ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1)),
                     p99=_ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)))


# --------------------------------------------------------------------------------------------
# checks


def edge_check(stack: Stack, layer: Layer) -> list[str]:
    """Light tiles on the antimeridian edge (x = 0 or 2^z - 1, z >= 1): does the tile statement return as many
    features as the tile holds? (A search box crossing +-180 wraps around in ST_Transform.) A thinned tile drops
    features by design (X-Tessera-Thinning), so only unthinned ones are counted against the table."""
    if layer.params.get("aggregationExp"):
        # Its features are cells (and an H3 layer's {i} is no z/x/y tile): counting points says nothing.
        return [f"[{layer.key}] antimeridian-edge check skipped: aggregated layers return cells, not points"]
    candidates = [t for t in layer.light if t.z >= 1 and t.x in (0, (1 << t.z) - 1) and t.count >= 0]
    edges = [t for t in candidates if not t.thinned]
    skipped = len(candidates) - len(edges)
    note = f" ({skipped} thinned ones not counted)" if skipped else ""
    if not edges:
        return [f"[{layer.key}] antimeridian-edge check: no unthinned light edge tile{note}"] if skipped else []
    rel = '"' + layer.table.replace('"', '""') + '"'
    parts = [f"(SELECT count(*) FROM {rel} WHERE geom && ST_Transform(ST_TileEnvelope({t.z}, {t.x}, {t.y}), 4326))"
             for t in edges]
    counts = stack.psql("SELECT " + " || ',' || ".join(parts), dbname="carto_dw").split(",")
    lost = [(t, int(n)) for t, n in zip(edges, counts) if int(n) > t.count]
    if not lost:
        return [f"[{layer.key}] antimeridian-edge tiles: all {len(edges)} unthinned light ones return every feature{note}"]
    t, n = max(lost, key=lambda p: p[1] - p[0].count)
    return [f"[{layer.key}] WARNING {len(lost)} of {len(edges)} unthinned antimeridian-edge tiles lose features, worst {t.zxy}: "
            f"{t.count:,} features returned, {n:,} points in the tile{note}"]


# --------------------------------------------------------------------------------------------
# Varnish (http-cache): the harness starts it with nginx (Stack.start_varnish); nginx routes maps-api's GETs
# through it once tessera-locations.conf does so -- seen as the X-Cache header that the VCL always sets.


def expose_backend(stack: Stack) -> int:
    """Adds a loopback TCP listener to the rendered copy of nginx's internal maps-backend server (the one
    Varnish uses as its backend: nginx -> FastCGI maps-api) and reloads nginx, so that wrk can drive path (b)
    exactly as the issue defines it. Only this run's rendered config changes, never nginx/."""
    site = stack.nginx_prefix / "conf" / "tessera-site.conf"
    text = site.read_text()
    anchor = f"listen unix:{stack.run_dir}/maps-backend.sock;"
    if anchor not in text:
        raise BenchError(f"{site}: no line {anchor!r} to add a TCP listener to")
    port = free_port()
    site.write_text(text.replace(anchor, f"{anchor}\n    listen 127.0.0.1:{port};  # bench/tiles only"))
    os.kill(stack.pid("nginx"), signal.SIGHUP)
    for _ in range(100):
        try:
            status, _, _ = http_get(f"http://127.0.0.1:{port}{HEALTH_PATH}", None, timeout=2)
            if status == 200:
                return port
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError(f"nginx did not start listening on 127.0.0.1:{port} after the reload")


def varnish_setup(stack: Stack, probe_url: str, token: str) -> tuple[bool, str]:
    """Returns (Varnish is in front of maps-api, note)."""
    if not hasattr(stack, "start_varnish"):
        return False, "no Stack.start_varnish() in Tests/harness/stack.py"
    if stack.pid("varnish") is None:
        try:
            stack.start_varnish()
        except Exception as e:  # a harness API this script has not seen: report it, measure the rest
            return False, f"Stack.start_varnish() failed: {type(e).__name__}: {e}"
    _, headers, _ = http_get(probe_url, token)
    if "x-cache" not in headers:
        return False, "Varnish runs, but nginx does not route /api/v3/maps through it (no X-Cache header)"
    return True, "nginx routes /api/v3/maps through Varnish"


def cache_hit(headers: dict[str, str]) -> bool | None:
    if "x-cache" in headers:
        return "hit" in headers["x-cache"].lower()
    if "x-varnish" in headers:
        return len(headers["x-varnish"].split()) >= 2
    if "age" in headers:
        return headers["age"].strip() not in ("", "0")
    return None


# --------------------------------------------------------------------------------------------


def fmt_ms(v: float | None) -> str:
    if v is None or v != v:
        return "-"
    return f"{v * 1000:.0f}us" if v < 1 else f"{v:.1f}ms" if v < 100 else f"{v:.0f}ms"


@dataclass
class Mix:
    """The light tiles of one layer within one zoom band: one throughput measurement per path."""
    layer: Layer
    lo: int
    hi: int
    tiles: list[Tile]

    @property
    def name(self) -> str:
        zs = [t.z for t in self.tiles]
        return f"{self.layer.key} z{min(zs)}-{max(zs)}"

    @property
    def slug(self) -> str:
        return f"{self.layer.key}-z{self.lo}"

    @property
    def mean_size(self) -> float:
        return sum(t.size for t in self.tiles) / len(self.tiles)


def parse_bands(text: str) -> list[tuple[int, int]]:
    bands = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", part)
        if not m or int(m.group(1)) > int(m.group(2)):
            raise SystemExit(f"--bands: expected ranges like 0-9,10-24, got {part!r}")
        bands.append((int(m.group(1)), int(m.group(2))))
    return bands


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--points", type=int, default=5_000_000, help="rows of bench_points (default 5000000)")
    ap.add_argument("--clients", default="2,8", help="concurrencies (default 2,8)")
    ap.add_argument("--seconds", type=int, default=10, help="per measurement and path (default 10)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per measurement (default 2)")
    ap.add_argument("--bands", default="0-9,10-24",
                    help="zoom bands measured apart, per layer (default 0-9,10-24; 0-24 for one mix per layer)")
    ap.add_argument("--plan-cache-mode", default="force_generic_plan",
                    choices=["force_generic_plan", "auto", "force_custom_plan"],
                    help="plan_cache_mode of the warehouse role, for both paths (default force_generic_plan; "
                         "auto = PostgreSQL's default; see 'Plans' below)")
    ap.add_argument("--bin", default=str(REPO / ".build" / "release"), help="Swift executables")
    ap.add_argument("--layers", default="places,points,quadbin-agg,h3-agg",
                    help="places, points, quadbin-agg, h3-agg (bench_points aggregated into quadbin / H3 cells per tile); default all")
    ap.add_argument("--tiles", help="file of z/x/y lines instead of the built-in list")
    ap.add_argument("--heavy-kb", type=float, default=512.0,
                    help="tile size above which a tile leaves the throughput mixes (default 512)")
    ap.add_argument("--heavy-per-zoom", type=int, default=1, help="heavy tiles timed per layer and zoom (default 1)")
    ap.add_argument("--heavy-budget", type=float, default=240.0, help="seconds for timing heavy tiles (default 240)")
    ap.add_argument("--state", help="keep the stack's state here and reuse its data next time (default: temp, removed)")
    ap.add_argument("--statements", action="store_true",
                    help="list every statement each path ran per tile, in every database (pg_stat_statements, first "
                         "round; loads the extension into the run's cluster, whose own cost then adds to every path's CPU) and "
                         "the sessions opened")
    ap.add_argument("--json", action="store_true", help="also print one BENCH_JSON line (read by bench/compare)")
    args = ap.parse_args()
    bin_dir = Path(args.bin).resolve()
    try:
        clients_list = [int(c) for c in args.clients.split(",") if c.strip()]
    except ValueError:
        raise SystemExit("--clients takes a comma-separated list of integers") from None
    if not clients_list or min(clients_list) < 1 or args.rounds < 1 or args.seconds < 1 or args.points < 1:
        raise SystemExit("--clients, --rounds, --seconds and --points must be positive")
    bands = parse_bands(args.bands)
    keys = [k.strip() for k in args.layers.split(",") if k.strip()]
    if not keys or not set(keys) <= {"places", "points", "quadbin-agg", "h3-agg"}:
        raise SystemExit("--layers takes places, points, quadbin-agg and/or h3-agg")
    if os.geteuid() != 0:
        raise SystemExit("run as root (the harness runs PostgreSQL as the postgres user)")
    for name, pkg in (("wrk", "wrk"), ("pgbench", "postgresql-client"), ("psql", "postgresql-client")):
        if not shutil.which(name) and not (PG_BIN / name).exists():
            raise SystemExit(f"{name} is required (apt-get install {pkg})")
    for prog in ("tessera", API_PROGRAMS["maps-api"], WORKER_PROGRAMS["sql-worker"]):
        if not (bin_dir / prog).is_file():
            raise SystemExit(f"{bin_dir / prog} not found: build first (swift build -c release) or pass --bin")
    try:
        tiles_xyz = read_tiles(Path(args.tiles)) if args.tiles else default_tiles()
    except (OSError, BenchError) as e:
        raise SystemExit(str(e)) from None

    aggregation = {"spatialDataType": "quadbin", "spatialDataColumn": "geom", "aggregationResLevel": "6",
                   "aggregationExp": "count(*) AS n, sum(value) AS total"}
    layers = [lay for lay in (Layer("places", "populated_places", "name,population"),
                              Layer("points", "bench_points", "id,value"),
                              Layer("quadbin-agg", "bench_points", "", params=aggregation),
                              Layer("h3-agg", "bench_points", "", params={**aggregation, "spatialDataType": "h3", "aggregationResLevel": "4"}))
              if lay.key in keys]
    if args.state:
        root = Path(args.state).resolve()
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="tessera-tiles-", dir="/tmp"))
    work = root / "bench"
    work.mkdir(exist_ok=True)
    # A snapshot of the executables: a rebuild during a long run must not pull them away mid-way.
    (work / "bin").mkdir(exist_ok=True)
    for prog in ("tessera", API_PROGRAMS["maps-api"], WORKER_PROGRAMS["sql-worker"]):
        shutil.copy2(bin_dir / prog, work / "bin" / prog)
    bin_dir = work / "bin"
    global WRK_LOG
    WRK_LOG = work / "wrk.log"
    t_start = time.monotonic()
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # so that the `finally` below stops the stack and removes the temp directory

    for sig in (signal.SIGTERM, signal.SIGHUP):  # before Stack(): the harness then keeps its hands off them
        signal.signal(sig, interrupted)
    try:
        stack = Stack(root)
    except StackError as e:
        raise SystemExit(f"error: {e}") from None
    notes: list[str] = []
    checks: list[str] = []
    try:
        print(f"state: {root}", flush=True)
        stack.start_postgres()
        if args.statements:
            StatementStats.enable(stack)
        stack.psql("ALTER SYSTEM RESET log_min_duration_statement")  # in case an earlier run was interrupted
        stack.psql("SELECT pg_reload_conf()")
        # Both paths log in as this role: the same plan policy for pgbench's and maps-api's sessions.
        stack.psql(f"ALTER ROLE {WAREHOUSE_USER} SET plan_cache_mode = {args.plan_cache_mode}")
        stack.start_redis()
        tool(bin_dir, stack, "migrate")
        tool(bin_dir, stack, "create-admin", "--email", ADMIN_EMAIL, "--password", "bench-" + os.urandom(8).hex(),
             "--if-missing")
        if any(lay.key == "places" for lay in layers):
            print("loading the demo places (demo_data.py) ...", flush=True)
            r = subprocess.run([sys.executable, str(REPO / "Tests" / "harness" / "demo_data.py"),
                                "--dsn", stack.warehouse_dsn], capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                raise BenchError(f"demo_data.py failed:\n{r.stdout}\n{r.stderr}")
        if any(lay.table == "bench_points" for lay in layers):
            ensure_points(stack, args.points)
        token = tool(bin_dir, stack, "tokens", "create", "--email", ADMIN_EMAIL, "--connection", CONNECTION,
                     "--source", "*", "--apis", "maps").strip().splitlines()[-1]

        # Static roots: copies of the repo's apps plus one file per mix of its mean tile size.
        www = root / "www"
        for app in ("workspace", "accounts"):
            (www / app).mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / "www" / app / "index.html", www / app / "index.html")
        (www / "workspace" / "bench-static").mkdir(exist_ok=True)
        os.chmod(www, 0o755)
        stack.start_api("maps-api", bin_dir / API_PROGRAMS["maps-api"])
        stack.start_nginx(www_root=www)
        # It builds the layers' precomputed levels (the queue's thinning_levels and aggregation_levels jobs), as in
        # production: started before the handshakes, whose interim TileJSONs queue the builds.
        stack.start_worker("sql-worker", bin_dir / WORKER_PROGRAMS["sql-worker"])
        api_pid, nginx_pid, pg_pid, redis_pid = (stack.pid(n) for n in ("maps-api", "nginx", "postgres", "redis"))
        for layer in layers:
            handshake(stack, token, layer)
            print(f"[{layer.key}] {layer.table}: {layer.rows:,} rows, source {layer.source_id}", flush=True)
        z, x, y = tiles_xyz[-1]
        routed, varnish_note = varnish_setup(stack, tile_url(layers[0], Tile(z, x, y)), token)
        varnish_pid = stack.pid("varnish") if routed else None
        base_b = stack.base_url
        if routed:
            UNCACHED["Cache-Control"] = "no-cache"  # the VCL evicts the entry and fetches from maps-api
            base_b = f"http://127.0.0.1:{expose_backend(stack)}"
        path_b = ("nginx -> FastCGI maps-api -> PostGIS (nginx's internal maps-backend server, which Varnish's misses "
                  "go through, on a loopback port)" if routed else "nginx -> FastCGI maps-api -> PostGIS (" + varnish_note + ")")
        path_m = "nginx -> Varnish (forced miss: Cache-Control: no-cache) -> nginx -> FastCGI maps-api -> PostGIS"
        print(f"(b) path: {path_b}", flush=True)

        # ---- every layer's levels built and its TileJSON no longer interim before any tile is captured: the captured
        # statements are what (a) replays, and a build running beside a measurement takes the cores and its CPU
        for layer in layers:
            layer.levels = settle_levels(stack, token, layer, base_b)

        # ---- every tile once through the API, statements captured; classification; raw replay
        hwm_start = vm_hwm_mb(api_pid)
        capture(stack, token, layers, tiles_xyz, base_b)  # path (b): the uncached path, Varnish bypassed
        hwm_capture = vm_hwm_mb(api_pid)
        mixes: list[Mix] = []
        for layer in layers:
            interim = [t.zxy for t in layer.tiles if t.path == "interim"]
            if interim:
                raise BenchError(f"[{layer.key}] {len(interim)} tiles were interim ones (X-Tessera-Thinning-Levels) after "
                                 f"the levels' build, e.g. {', '.join(interim[:5])}: (a) would replay their statements")
            classify(layer, args.heavy_kb)
            if not layer.light:
                raise BenchError(f"[{layer.key}] no light tile (all heavy, failed or without a query): "
                                 + ", ".join(f"{t.zxy} {t.heavy or 'no query'} {t.error}" for t in layer.tiles[:10]))
            checks.append(calibrate(stack, layer)[0])
            checks += edge_check(stack, layer)
            for t in layer.tiles:
                if t.error:
                    checks.append(f"[{layer.key}] WARNING tile {t.zxy}: {t.error}")
            print(f"[{layer.key}] per zoom (first request through the API):  tiles  kB/tile  ms/tile  "
                  "statements/tile  features/tile (light)  heavy")
            for z, group in itertools.groupby(layer.tiles, key=lambda t: t.z):
                g = list(group)
                lt = [t for t in g if t in layer.light]
                print(f"  z{z:<2} {len(g):>46}  {sum(t.size for t in g) / len(g) / 1024:>7.1f}  "
                      f"{sum(t.api_ms for t in g) / len(g):>7.1f}  {sum(len(t.stmts) for t in g) / len(g):>15.1f}  "
                      f"{(f'{sum(t.count for t in lt) / len(lt):,.0f}' if lt else '-'):>21}  "
                      f"{sum(bool(t.heavy) for t in g):>5}", flush=True)
            noquery = sum(t.noquery for t in layer.tiles)
            paths = {p: sum(1 for t in layer.tiles if t.path == p) for p in sorted({t.path for t in layer.tiles})}
            print(f"[{layer.key}] {len(layer.light)} light tiles, {len({t.stmts[0].text for t in layer.light})} statement "
                  f"text(s); {len(layer.heavy)} heavy" + (f"; {noquery} answered without a query" if noquery else "")
                  + "; answered from " + ", ".join(f"{p or 'per request'} {n}" for p, n in paths.items()), flush=True)
            if noquery:
                notes.append(f"[{layer.key}] {noquery} tiles were answered without a warehouse query (outside the "
                             "data's extent): left out of every path")
            for lo, hi in bands:
                tiles = [t for t in layer.light if lo <= t.z <= hi]
                if tiles:
                    mixes.append(Mix(layer, lo, hi, tiles))
        for mix in mixes:
            (www / "workspace" / "bench-static" / f"{mix.slug}.mvt").write_bytes(os.urandom(int(round(mix.mean_size))))

        # ---- (a) raw, (b) tessera, static, health: per mix and client count, in interleaved rounds
        results: dict[tuple[str, int], dict[str, Series]] = {}
        health: dict[int, Series] = {}
        per_round = max(1, args.seconds // args.rounds)
        pids_b = {"db": pg_pid, "api": api_pid, "nginx": nginx_pid, "redis": redis_pid, "varnish": varnish_pid}
        statements = StatementStats(stack) if args.statements else None
        wait_quiet(pg_pid, "PostgreSQL")
        sampler = ParallelSampler(stack)
        sampler.start()  # idle baseline (the sampler runs during (a) and (b), so it is part of it)
        c = CPU(pids_b)
        time.sleep(3)
        idle = c.stop()
        sampler.stop()
        IDLE.update({k: v / idle["_elapsed"] for k, v in idle.items() if k != "_elapsed"})
        print("idle CPU, subtracted from every figure: " + ", ".join(f"{k} {v * 1000:.1f} ms/s" for k, v in IDLE.items()),
              flush=True)
        for mix in mixes:
            scripts = write_pgbench_scripts(work, mix.slug, mix.tiles)
            lua = write_wrk_script(work, mix.slug, [tile_path(mix.layer, t) for t in mix.tiles])
            static_path = f"/bench-static/{mix.slug}.mvt"
            status, _, _ = http_get(stack.base_url + static_path, None)
            if status != 200:
                raise BenchError(f"static file {static_path} -> {status}")
            for clients in clients_list:
                res = results[(mix.name, clients)] = {k: Series() for k in ("a", "b", "m", "static")}
                for rnd in range(args.rounds):
                    counted = statements if rnd == 0 else None
                    if counted:
                        counted.start()
                    sampler.start()
                    tps, n, cpu = pgbench(stack, scripts, clients, per_round, {"db": pg_pid})
                    res["a"].parallel.append(sampler.stop())
                    res["a"].add(tps, n, cpu)
                    if counted:
                        res["a"].statements = counted.stop()

                    if rnd == 0:
                        wrk(base_b, token, lua, clients, 2)  # the API's pool, statements
                    if counted:
                        counted.start()
                    c = CPU(pids_b)
                    sampler.start()
                    w = wrk(base_b, token, lua, clients, per_round)
                    res["b"].parallel.append(sampler.stop())
                    res["b"].add(w.rps, w.requests, c.stop(), w.p50, w.p99)
                    if counted:
                        res["b"].statements = counted.stop()

                    if routed:  # what a real cache miss costs: both nginx passes and Varnish
                        c = CPU(pids_b)
                        w = wrk(stack.base_url, token, lua, clients, per_round, headers=UNCACHED)
                        res["m"].add(w.rps, w.requests, c.stop(), w.p50, w.p99)

                    if rnd == 0:
                        wrk(stack.base_url, None, None, clients, 1, path=static_path)
                    c = CPU({"nginx": nginx_pid})
                    w = wrk(stack.base_url, None, None, clients, per_round, path=static_path)
                    res["static"].add(w.rps, w.requests, c.stop(), w.p50, w.p99)

                    if mix is mixes[0]:  # the hop alone: no auth, no database
                        c = CPU({"api": api_pid, "nginx": nginx_pid, "varnish": varnish_pid})
                        w = wrk(base_b, None, None, clients, max(1, per_round // 2), path=HEALTH_PATH)
                        health.setdefault(clients, Series()).add(w.rps, w.requests, c.stop(), w.p50, w.p99)
                a, b, st = res["a"], res["b"], res["static"]
                nondb = b.us("api") + b.us("nginx")
                print(f"[{mix.name}] {clients} clients: raw {a.rate:.0f} tiles/s, tessera {b.rate:.0f} rps "
                      f"({fmt_ratio(b.rate, a.rate)}, non-db {nondb:.0f} µs/tile, PostgreSQL (a) {a.cpu_text('db')} "
                      f"(b) {b.cpu_text('db')} µs/tile), static {st.rate:.0f} rps", flush=True)
        sampler.close()
        hwm_light = vm_hwm_mb(api_pid)

        # ---- heavy tiles, one at a time: the API's statement sequence in psql vs one API request
        heavy_rows = []
        deadline = time.monotonic() + args.heavy_budget
        for layer in layers:
            picked: list[Tile] = []
            candidates = [t for t in layer.heavy if t.stmts and not t.error]
            for t in layer.heavy:
                if t.error:  # e.g. the statement timeout: reported from the capture, not repeated
                    heavy_rows.append((layer.key, t, None, t.status, t.size, t.api_ms, True, f"capture: {t.error}", None))
            for _, group in itertools.groupby(sorted(candidates, key=lambda t: (-t.z, t.x, t.y)), key=lambda t: t.z):
                picked += list(group)[:args.heavy_per_zoom]
            skipped = len(candidates) - len(picked)
            warm = layer.light[0].stmts[0]
            for t in picked:  # highest zoom (cheapest) first: the budget drops the biggest ones
                if deadline - time.monotonic() < 5:
                    skipped += 1
                    continue
                raw = psql_timed(stack.warehouse_dsn, t.stmts, timeout=STATEMENT_TIMEOUT_MS / 1000 * len(t.stmts) + 60,
                                 warm=warm)
                raw_ms = sum(r[2] for r in raw) if all(raw) else None
                t0 = time.perf_counter()
                try:
                    status, _, body = http_get(tile_url(layer, t), token, timeout=STATEMENT_TIMEOUT_MS / 1000 + 30,
                                               headers=UNCACHED)
                except OSError as e:
                    status, body = 0, str(e).encode()
                api_ms = (time.perf_counter() - t0) * 1000
                lit_ms = None
                if deadline - time.monotonic() > 5:  # the same statements with literals: custom plans
                    lit = psql_timed(stack.warehouse_dsn, t.stmts, timeout=STATEMENT_TIMEOUT_MS / 1000 * len(t.stmts) + 60,
                                     prepared=False, warm=warm)
                    lit_ms = sum(r[2] for r in lit) if all(lit) else None
                last = raw[-1]
                result = ("timeout/error" if raw_ms is None else
                          f"{last[1]:,} features" + (" (over the byte cap: 204)" if status == 204 and last[1] else ""))
                same = status == 204 or (status == 200 and last is not None and same_size(len(body), last[0]))
                heavy_rows.append((layer.key, t, raw_ms, status, len(body), api_ms, same, result, lit_ms))
                print(f"[{layer.key}] heavy {t.zxy}: raw {len(t.stmts)} statement(s) {fmt_ms(raw_ms)} -> {result}; "
                      f"API {status} {len(body):,} B in {api_ms:.0f} ms; literals {fmt_ms(lit_ms)}", flush=True)
            if skipped:
                notes.append(f"[{layer.key}] {skipped} heavy tiles not timed (--heavy-per-zoom {args.heavy_per_zoom}, "
                             f"--heavy-budget {args.heavy_budget:.0f}s)")
        hwm_heavy = vm_hwm_mb(api_pid)

        # ---- (c) Varnish, warm
        if not routed:
            notes.append(f"(c) skipped: {varnish_note}")
        else:
            samples = []
            for mix in mixes:
                for t in mix.tiles:  # warm: every tile once
                    status, _, body = http_get(tile_url(mix.layer, t), token)
                    if status not in (200, 204):
                        raise BenchError(f"[{mix.name}] tile {t.zxy} through Varnish -> {status}: {body[:300]!r}")
                for t in mix.tiles[:: max(1, len(mix.tiles) // 5)]:
                    samples.append(cache_hit(http_get(tile_url(mix.layer, t), token)[1]))
            known = [x for x in samples if x is not None]
            notes.append("(c) warm check: " + (f"{sum(known)}/{len(known)} re-requested tiles were cache hits (X-Cache)"
                                               if known else "no header tells hits from misses"))
            pids_c = {"api": api_pid, "nginx": nginx_pid, "varnish": varnish_pid, "db": pg_pid}
            for mix in mixes:
                lua = write_wrk_script(work, mix.slug, [tile_path(mix.layer, t) for t in mix.tiles])
                for clients in clients_list:
                    cs = results[(mix.name, clients)]["c"] = Series()
                    for rnd in range(args.rounds):
                        if rnd == 0:
                            wrk(stack.base_url, token, lua, clients, 1)
                        c = CPU(pids_c)
                        w = wrk(stack.base_url, token, lua, clients, per_round)
                        cs.add(w.rps, w.requests, c.stop(), w.p50, w.p99)
                    if cs.us("api") > 10:
                        notes.append(f"[{mix.name}] {clients} clients: WARNING maps-api used {cs.us('api'):.0f} µs per "
                                     "request during (c): Varnish passed the tiles to maps-api")

        # ---- report
        print()
        print("=" * 118)
        print(f"Tessera vector tiles, one run: {len(tiles_xyz)} tiles z{min(t[0] for t in tiles_xyz)}-"
              f"z{max(t[0] for t in tiles_xyz)}, {args.rounds} x {per_round}s per measurement and path (interleaved), "
              f"{os.cpu_count()} CPUs, load average before: {load_before}; plan_cache_mode={args.plan_cache_mode}")
        print("(a) pgbench -M prepared: maps-api's own statements and bound values, replayed")
        print(f"(b) wrk: {path_b}")
        if routed:
            print(f"(m) wrk: {path_m} -- the real miss path, for reference")
        print("(c) wrk: nginx -> Varnish, warm" + ("" if routed else f" -- skipped: {varnish_note}"))
        print("static: wrk: nginx serving a file of the mix's mean tile size")
        for mix in mixes:
            tl = mix.tiles
            print()
            print(f"{mix.name}: {mix.layer.table} ({mix.layer.rows:,} rows, columns {mix.layer.columns}) -- {len(tl)} tiles, "
                  f"mean {mix.mean_size / 1024:.1f} kB, {sum(t.count for t in tl) / len(tl):,.0f} features/tile, "
                  f"{sum(t.size == 0 for t in tl)} empty, raw {sum(t.ms for t in tl) / len(tl):.2f} ms/tile (psql, one by one)")
            print(f"  {'clients':>7} {'(a) raw/s':>10} {'(b) rps':>9} {'b/a':>5} {'b p50':>7} {'b p99':>7} "
                  f"{'(c) rps':>9} {'c/a':>5} {'c p50':>7} {'c p99':>7} {'static':>8} {'c/stat':>6} {'b/stat':>6}")
            for clients in clients_list:
                r = results[(mix.name, clients)]
                a, b, st, c = r["a"], r["b"], r["static"], r.get("c")
                cc = (f"{c.rate:>9.0f} {c.rate / (a.rate or math.nan):>5.2f} {fmt_ms(c.p50):>7} {fmt_ms(c.p99):>7}" if c
                      else f"{'skipped':>9} {'-':>5} {'-':>7} {'-':>7}")
                print(f"  {clients:>7} {a.rate:>10.0f} {b.rate:>9.0f} {b.rate / (a.rate or math.nan):>5.2f} {fmt_ms(b.p50):>7} "
                      f"{fmt_ms(b.p99):>7} {cc} {st.rate:>8.0f} {(f'{c.rate / st.rate:.2f}' if c else '-'):>6} "
                      f"{b.rate / st.rate:>6.2f}")
            if routed:
                for clients in clients_list:
                    a, m = results[(mix.name, clients)]["a"], results[(mix.name, clients)]["m"]
                    print(f"  (m) miss through Varnish, {clients} clients: {m.rate:.0f} rps, m/a {m.rate / (a.rate or math.nan):.2f}, "
                          f"p50 {fmt_ms(m.p50)}, p99 {fmt_ms(m.p99)}; non-db µs/tile: maps-api {m.us('api'):.0f} + "
                          f"nginx {m.us('nginx'):.0f} + varnish {m.us('varnish'):.0f}")
            print("  CPU per tile, µs (non-db = maps-api + nginx):")
            for clients in clients_list:
                r = results[(mix.name, clients)]
                a, b, st, c = r["a"], r["b"], r["static"], r.get("c")
                nondb = b.us('api') + b.us('nginx')
                line = (f"  {clients:>7}  (a) db {a.cpu_text('db')} | (b) db {b.cpu_text('db')}, maps-api {b.us('api'):.0f} + "
                        f"nginx {b.us('nginx'):.0f} = non-db {nondb:.0f}, redis {fmt_us(b.us('redis'))}")
                if c:
                    line += (f" | (c) nginx {c.us('nginx'):.0f}, varnish {fmt_us(c.us('varnish'))}, "
                             f"maps-api {fmt_us(c.us('api'))}")
                line += f" | static: nginx {st.us('nginx'):.0f}"
                print(line)
            if args.statements:
                for clients in clients_list:
                    for key, label in (("a", "(a) pgbench"), ("b", "(b) tessera")):
                        print(f"  statements per tile, {label}, {clients} clients (pg_stat_statements, first round):")
                        print("\n".join(results[(mix.name, clients)][key].statements))
            print("  parallel workers active on average (pg_stat_activity): " + ", ".join(
                f"{clients} clients (a) {avg(results[(mix.name, clients)]['a'].parallel):.1f} "
                f"(b) {avg(results[(mix.name, clients)]['b'].parallel):.1f}" for clients in clients_list))
            for clients in clients_list:
                a, b = results[(mix.name, clients)]["a"], results[(mix.name, clients)]["b"]
                for key, series in (("(a)", a), ("(b)", b)):
                    if series.us("db") != series.us("db"):
                        checks.append(f"[{mix.name}] {clients} clients: PostgreSQL CPU per tile of {key} not measured: "
                                      + series.sampled("db")[1])
                if b.us("db") > 1.3 * a.us("db") or a.us("db") > 1.3 * b.us("db"):
                    checks.append(f"[{mix.name}] {clients} clients: PostgreSQL CPU per tile differs between the paths "
                                  f"for the same statements: (a) {a.us('db'):.0f} µs, (b) {b.us('db'):.0f} µs -- different "
                                  "plans (parallel workers above, --plan-cache-mode) or CPU contention with the other "
                                  "processes on the same cores")
        print()
        print("the hop alone (GET /api/v3/maps/health: no auth, no database, same path as (b)), per request:")
        for clients, h in health.items():
            print(f"  {clients:>7} clients: {h.rate:.0f} rps, maps-api {h.us('api'):.0f} µs + nginx {h.us('nginx'):.0f} µs"
                  + f", p50 {fmt_ms(h.p50)}")
        if heavy_rows:
            print()
            print("heavy tiles, one request each. raw = maps-api's statements for the tile replayed in psql, prepared "
                  f"(plan_cache_mode={args.plan_cache_mode}, like maps-api); literals = the same with the values written "
                  "in (custom plans):")
            print(f"  {'layer':<7} {'tile':<12} {'why':<5} {'stmts':>5} {'raw':>9} {'API':>9} {'API/raw':>7} "
                  f"{'literals':>9} {'status':>6} {'bytes':>10}  result")
            for key, t, raw_ms, status, nbytes, api_ms, same, result, lit_ms in heavy_rows:
                ratio = f"{api_ms / raw_ms:.2f}" if raw_ms else "-"
                print(f"  {key:<7} {t.zxy:<12} {t.heavy:<5} {len(t.stmts):>5} {fmt_ms(raw_ms):>9} {fmt_ms(api_ms):>9} "
                      f"{ratio:>7} {fmt_ms(lit_ms):>9} {status:>6} {nbytes:>10,}  {result}"
                      f"{'' if same else '  (size differs from raw)'}")
        print()
        print("maps-api peak RSS (VmHWM), MB: " + ", ".join(
            f"{label} {fmt_mb(v)}" for label, v in (("after start and handshakes", hwm_start),
                                                     ("after every tile once (heavy ones included)", hwm_capture),
                                                     ("after the throughput runs", hwm_light),
                                                     ("after the heavy tiles", hwm_heavy))))
        for line in checks:
            print(f"check: {line}")
        for line in notes:
            print(f"note: {line}")
        print(f"total time {time.monotonic() - t_start:.0f}s")
        if args.json:
            print("BENCH_JSON " + json.dumps(bench_json(mixes, results, health, load_before)))
        return 0
    except (BenchError, StackError, subprocess.TimeoutExpired, OSError) as e:
        print(f"\nerror: {e}", file=sys.stderr)
        if isinstance(e, StackError) or "->" in str(e):
            print(stack.log_report(20), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        try:
            if stack.pid("postgres"):
                stack.psql("ALTER SYSTEM RESET log_min_duration_statement")
                stack.psql(f"ALTER ROLE {WAREHOUSE_USER} RESET plan_cache_mode")
                if args.statements:
                    StatementStats.disable(stack)
        except Exception:
            pass
        stack.stop_all()
        if not args.state:
            shutil.rmtree(root, ignore_errors=True)


def bench_json(mixes: list[Mix], results: dict, health: dict, load: str) -> dict:
    """The run's figures for bench/compare: per mix and client count, rates, latencies and CPU µs per tile."""
    def nan_none(v: float | None) -> float | None:
        return None if v is None or v != v else v
    out = {"load": load, "health": {str(c): {"rps": h.rate, "api_us": nan_none(h.us("api")), "nginx_us": nan_none(h.us("nginx"))}
                                    for c, h in health.items()}, "mixes": []}
    for mix in mixes:
        per = {}
        for (name, clients), r in results.items():
            if name != mix.name:
                continue
            a, b, m = r["a"], r["b"], r.get("m")
            per[str(clients)] = {"a": a.rate, "b": b.rate, "m": m.rate if m and m.rates else None,
                                 "p50_ms": nan_none(b.p50), "p99_ms": nan_none(b.p99),
                                 "db_a_us": nan_none(a.us("db")), "db_b_us": nan_none(b.us("db")),
                                 "db_a_why": a.sampled("db")[1], "db_b_why": b.sampled("db")[1],
                                 "api_us": nan_none(b.us("api")), "nginx_us": nan_none(b.us("nginx"))}
        answered = {p or "per request": sum(1 for t in mix.tiles if t.path == p) for p in sorted({t.path for t in mix.tiles})}
        out["mixes"].append({"name": mix.name, "layer": mix.layer.key, "lo": mix.lo, "hi": mix.hi, "levels": mix.layer.levels,
                             "answered_from": answered, "clients": per})
    return out


def fmt_ratio(num: float, den: float) -> str:
    """num/den as "0.00x", or "-" when the floor measured nothing (a short round of very slow tiles)."""
    return f"{num / den:.2f}x" if den else "-"


def avg(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else float("nan")


def fmt_mb(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def fmt_us(v: float) -> str:
    return "-" if v != v else f"{v:.0f}"


if __name__ == "__main__":
    sys.exit(main())
