#!/usr/bin/env python3
"""Low-zoom tiles of big point layers, cold (issue 15's heavy-tile row; issue 13's "tiles are heavy").

For each layer -- the GeoNames demo places (`populated_places`, name and population, as bench/tiles) and the
generated `bench_points` (--points, default 5M, id and value; shared with bench/tiles via --state) -- every
tile z0-z3 that holds data and, from z4 on, up to --per-zoom tiles (the tiles over the eight bench cities,
the densest, then a deterministic spread) is requested once through nginx's internal maps-backend server ->
FastCGI maps-api -> PostGIS: Varnish bypassed, nothing cached (cold). Printed per layer and zoom: tiles,
p50/p95/max time, p50/p95 raw and gzip-compressed size (gzip level 6, Varnish's default), p95 features,
and whether the goal holds (p95 <= 200 ms and every tile <= 500 KB compressed).

The sql-worker runs too: before measuring a layer, its z0 tile is asked (past the caches) until maps-api answers it
from the precomputed thinning levels (`X-Tessera-Thinning-Levels: precomputed`), and the time that took (the
levels' build, queued by the first tile) is printed. A maps-api that does not send the header (older builds, or
--no-levels) is measured on its per-request path.

    bench/tiles --low-zooms [--points 5000000] [--layers places,points] [--zooms 0-6] [--per-zoom 48]
                            [--order population] [--bin .build/release] [--maps-api PATH] [--state DIR]
                            [--no-levels] [--json]

--maps-api runs another maps-api executable (e.g. one built from an older commit: the "before" column);
--order passes thinningOrder=<column> for the places layer (default: the uniform thinning);
--no-levels does not start the sql-worker: tiles are the TileJSON's before any levels exist (the interim tiles,
  `thinning=sampled`, where some levelled zoom is sampled; else per request);
--json prints, as the last line, one JSON object with every row (bench/compare reads it).
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tiles_bench as tb  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Tests" / "e2e"))
import mvt  # noqa: E402  (the e2e tests' independent MVT decoder)
from tiles_bench import ADMIN_EMAIL, API_PROGRAMS, CITIES, CONNECTION, REPO, Stack, http_get  # noqa: E402
from stack import WORKER_PROGRAMS  # noqa: E402


def tiles_for(z: int, box: list[float], per_zoom: int) -> list[tuple[int, int, int]]:
    """Every tile of zoom z over the data's box (lon/lat) when few, else the city tiles then a spread."""
    x0, y0 = tb.tile_of(box[0], box[3], z)
    x1, y1 = tb.tile_of(box[2], box[1], z)
    every = [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    if z <= 3 or len(every) <= per_zoom:
        return every
    chosen: list[tuple[int, int, int]] = []
    for _, lon, lat in CITIES:
        t = (z, *tb.tile_of(lon, lat, z))
        if t not in chosen:
            chosen.append(t)
    step = max(1, len(every) // per_zoom)
    for t in every[::step]:
        if len(chosen) >= per_zoom:
            break
        if t not in chosen:
            chosen.append(t)
    return chosen


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=5_000_000)
    ap.add_argument("--layers", default="places,points")
    ap.add_argument("--zooms", default="0-6")
    ap.add_argument("--per-zoom", type=int, default=48)
    ap.add_argument("--order", help="thinningOrder for the places layer (e.g. population)")
    ap.add_argument("--bin", default=str(REPO / ".build" / "release"))
    ap.add_argument("--maps-api", help="the maps-api executable to measure (default: --bin's)")
    ap.add_argument("--state", help="keep the stack's state (and the generated points) here")
    ap.add_argument("--no-levels", action="store_true", help="no sql-worker: the per-request thinning only")
    ap.add_argument("--json", action="store_true", help="print every row as one JSON object on the last line")
    args = ap.parse_args()
    lo, hi = (int(v) for v in args.zooms.split("-"))
    keys = [k.strip() for k in args.layers.split(",") if k.strip()]
    bin_dir = Path(args.bin).resolve()
    maps_api = Path(args.maps_api).resolve() if args.maps_api else bin_dir / API_PROGRAMS["maps-api"]
    root = Path(args.state).resolve() if args.state else Path(tempfile.mkdtemp(prefix="tessera-lowzoom-", dir="/tmp"))
    root.mkdir(parents=True, exist_ok=True)
    stack = Stack(root)

    def interrupted(signum, frame):
        raise KeyboardInterrupt
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    try:
        stack.start_postgres()
        stack.start_redis()
        tb.tool(bin_dir, stack, "migrate")
        tb.tool(bin_dir, stack, "create-admin", "--email", ADMIN_EMAIL, "--password", "bench-" + os.urandom(8).hex(), "--if-missing")
        if "places" in keys:
            r = subprocess.run([sys.executable, str(REPO / "Tests" / "harness" / "demo_data.py"), "--dsn", stack.warehouse_dsn],
                               capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                raise SystemExit(f"demo_data.py failed:\n{r.stdout}\n{r.stderr}")
        if "points" in keys:
            tb.ensure_points(stack, args.points)
        token = tb.tool(bin_dir, stack, "tokens", "create", "--email", ADMIN_EMAIL, "--connection", CONNECTION,
                        "--source", "*", "--apis", "maps").strip().splitlines()[-1]
        stack.start_api("maps-api", maps_api)
        worker = bin_dir / WORKER_PROGRAMS["sql-worker"]
        if not args.no_levels and worker.is_file():
            stack.start_worker("sql-worker", worker)
        stack.start_nginx()
        base = f"http://127.0.0.1:{tb.expose_backend(stack)}"
        print(f"maps-api: {maps_api}\npath: nginx (internal maps-backend server) -> FastCGI maps-api -> PostGIS, "
              f"Varnish bypassed, each tile requested once (cold)", flush=True)
        layers = []
        if "places" in keys:
            layers.append(tb.Layer("places", "populated_places", "name,population",
                                   params={"thinningOrder": args.order} if args.order else {}))
        if "points" in keys:
            layers.append(tb.Layer("points", "bench_points", "id,value"))
        print(f"{'layer':8} {'z':>2} {'tiles':>5} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'p50 KB':>7} {'p95 KB':>7} "
              f"{'p50 gz':>7} {'p95 gz':>7} {'max gz':>7} {'p95 ft':>7}  goal", flush=True)
        report = {"bench": "tiles-lowzoom", "maps_api": str(maps_api), "load": os.getloadavg()[0], "rows": [], "levels": {}}
        for layer in layers:
            tb.handshake(stack, token, layer)
            built = None if args.no_levels else tb.wait_for_thinning_levels(stack, token, layer, base)
            report["levels"][layer.key] = None if built is None else round(built, 1)
            print(f"{layer.key:8} thinning levels: " + ("not used (per-request thinning)" if built is None
                  else f"precomputed, ready {built:.1f}s after the first tile (build time, queue pick-up included)"), flush=True)
            tb.handshake(stack, token, layer, fresh=True)  # the TileJSON again, now that the levels exist
            if built is not None and tb.INTERIM in layer.template:
                raise tb.BenchError(f"[{layer.key}] the TileJSON still pins interim tiles after the levels' build")
            path_name = ("precomputed" if built is not None else "interim (sampled, pinned)" if tb.INTERIM in layer.template
                         else "per request")
            print(f"{layer.key:8} tiles measured: {path_name}", flush=True)
            extent = stack.psql(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM {layer.table}) s",
                                dbname="carto_dw")
            box = [max(-180, min(180, float(v))) for v in extent.split("|")]
            box[1], box[3] = max(-85.05, box[1]), min(85.05, box[3])
            for z in range(lo, hi + 1):
                times, raw, packed, feats = [], [], [], []
                for t in tiles_for(z, box, args.per_zoom):
                    url = tb.tile_url(layer, tb.Tile(*t), base)
                    started = time.monotonic()
                    status, headers, data = http_get(url, token)
                    times.append((time.monotonic() - started) * 1000)
                    if status not in (200, 204):
                        raise SystemExit(f"{url} -> {status}: {data[:300]!r}")
                    raw.append(len(data) / 1024)
                    packed.append(len(gzip.compress(data, 6)) / 1024 if data else 0)
                    feats.append(len(mvt.decode(data)["default"].features) if data else 0)
                ok = pct(times, 95) <= 200 and max(packed) <= 500
                report["rows"].append({"layer": layer.key, "z": z, "tiles": len(times), "p50_ms": round(pct(times, 50), 1),
                                       "p95_ms": round(pct(times, 95), 1), "max_ms": round(max(times), 1),
                                       "p50_kb": round(pct(raw, 50), 1), "p95_kb": round(pct(raw, 95), 1),
                                       "p50_gz_kb": round(pct(packed, 50), 1), "p95_gz_kb": round(pct(packed, 95), 1),
                                       "max_gz_kb": round(max(packed), 1), "p95_features": pct(feats, 95), "goal": ok})
                print(f"{layer.key:8} {z:>2} {len(times):>5} {pct(times, 50):>7.1f} {pct(times, 95):>7.1f} {max(times):>7.1f} "
                      f"{pct(raw, 50):>7.1f} {pct(raw, 95):>7.1f} {pct(packed, 50):>7.1f} {pct(packed, 95):>7.1f} "
                      f"{max(packed):>7.1f} {pct(feats, 95):>7.0f}  {'ok' if ok else 'MISSED'}", flush=True)
        report["goal"] = all(r["goal"] for r in report["rows"])
        if args.json:
            print(json.dumps(report), flush=True)
        return 0
    except tb.BenchError as e:
        raise SystemExit(f"error: {e}") from None
    finally:
        stack.stop_all()
        if not args.state:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
