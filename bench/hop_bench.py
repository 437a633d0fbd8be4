#!/usr/bin/env python3
"""The hop alone: maps-api's health route (no auth, no database) through nginx -> FastCGI -> maps-api,
against nginx serving a static file of the same size, measured in one run at equal concurrency.

The hop goes through nginx's internal maps-backend server (Varnish's backend; given a loopback port in this run's
rendered config, as bench/tiles does for its path (b)); the static file comes from the public server (plain
HTTP, the same nginx). Printed:
requests/s, the ratio hop/static, p50/p99, and CPU µs per request of maps-api and nginx (idle subtracted).
`--json` adds one machine-readable line `HOP_JSON {...}` (bench/compare reads it).

usage: bench/hop [--clients 2,8] [--seconds 10] [--rounds 2] [--bin .build/release] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tiles_bench as tb  # noqa: E402  (wrk, CPU, Series, expose_backend: the same measurement as bench/tiles)
from tiles_bench import API_PROGRAMS, Stack, tool  # noqa: E402


@contextmanager
def hop_stack(src: Path, prefix: str) -> Iterator[tuple[Path, Stack, str, str, int]]:
    """PostgreSQL (migrated), maps-api and nginx in a new directory under /tmp, from the binaries in `src`;
    yields that directory, the stack, the hop's base URL (the internal maps-backend server on a loopback port),
    the static base URL (the public server, serving hop.json: as many bytes as the health answer) and that
    size. Everything is stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    stack = None
    try:
        stack, base, static_base, size = _start(src, root)
        yield root, stack, base, static_base, size
    finally:
        if stack:
            stack.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def _start(src: Path, root: Path) -> tuple[Stack, str, str, int]:
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for prog in ("tessera", API_PROGRAMS["maps-api"]):  # a snapshot: a rebuild mid-run must not pull them away
        shutil.copy2(src.resolve() / prog, bin_dir / prog)
    stack = Stack(root)
    try:
        stack.start_postgres()
        tool(bin_dir, stack, "migrate")
        www = root / "www"
        for app in ("workspace", "accounts"):
            (www / app).mkdir(parents=True, exist_ok=True)
            shutil.copy(tb.REPO / "www" / app / "index.html", www / app / "index.html")
        os.chmod(www, 0o755)
        stack.start_api("maps-api", bin_dir / API_PROGRAMS["maps-api"])
        stack.start_nginx(www_root=www)
        base = f"http://127.0.0.1:{tb.expose_backend(stack)}"
        status, _, body = tb.http_get(base + tb.HEALTH_PATH, None)
        if status != 200:
            raise SystemExit(f"{tb.HEALTH_PATH} -> {status}")
        (www / "workspace" / "hop.json").write_bytes(b"x" * len(body))
    except BaseException:
        stack.stop_all()
        raise
    # Static from the public server, as bench/tiles does (the internal maps-backend server serves no files).
    return stack, base, stack.base_url, len(body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="2,8")
    ap.add_argument("--seconds", type=int, default=10, help="per measurement and path (default 10)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    ap.add_argument("--bin", default=str(tb.REPO / ".build" / "release"))
    ap.add_argument("--json", action="store_true", help="also print one HOP_JSON line")
    args = ap.parse_args()
    clients_list = [int(c) for c in args.clients.split(",") if c.strip()]
    if os.geteuid() != 0:
        raise SystemExit("run as root (the harness runs PostgreSQL as the postgres user)")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is required (apt-get install wrk)")
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    with hop_stack(Path(args.bin), "tessera-hop-") as (_, stack, base, static_base, size):
        api_pid, nginx_pid = stack.pid("maps-api"), stack.pid("nginx")
        c = tb.CPU({"api": api_pid, "nginx": nginx_pid})
        time.sleep(2)
        idle = c.stop()
        tb.IDLE.update({k: v / idle["_elapsed"] for k, v in idle.items() if k != "_elapsed"})
        per_round = max(1, args.seconds // args.rounds)
        results: dict[int, dict[str, tb.Series]] = {}
        for clients in clients_list:
            res = results[clients] = {"hop": tb.Series(), "static": tb.Series()}
            tb.wrk(base, None, None, clients, 1, path=tb.HEALTH_PATH)
            tb.wrk(static_base, None, None, clients, 1, path="/hop.json")
            for _ in range(args.rounds):
                for key, url, path in (("hop", base, tb.HEALTH_PATH), ("static", static_base, "/hop.json")):
                    c = tb.CPU({"api": api_pid, "nginx": nginx_pid})
                    w = tb.wrk(url, None, None, clients, per_round, path=path)
                    res[key].add(w.rps, w.requests, c.stop(), w.p50, w.p99)
        print(f"the hop: GET {tb.HEALTH_PATH} (nginx -> FastCGI maps-api) vs nginx static file of {size} B; "
              f"{args.rounds} x {per_round}s interleaved; {os.cpu_count()} CPUs, load before {load_before}")
        print(f"  {'clients':>7} {'hop rps':>9} {'static':>9} {'ratio':>6} {'hop p50':>8} {'hop p99':>8} "
              f"{'st p50':>8} {'api µs':>7} {'nginx µs':>8} {'st nginx µs':>11}")
        out = {"clients": {}, "load": load_before}
        for clients, r in results.items():
            h, s = r["hop"], r["static"]
            print(f"  {clients:>7} {h.rate:>9.0f} {s.rate:>9.0f} {h.rate / s.rate:>6.2f} {tb.fmt_ms(h.p50):>8} "
                  f"{tb.fmt_ms(h.p99):>8} {tb.fmt_ms(s.p50):>8} {h.us('api'):>7.0f} {h.us('nginx'):>8.0f} "
                  f"{s.us('nginx'):>11.0f}")
            out["clients"][str(clients)] = {
                "hop_rps": h.rate, "static_rps": s.rate, "ratio": h.rate / s.rate,
                "hop_p50_ms": h.p50, "hop_p99_ms": h.p99, "static_p50_ms": s.p50, "static_p99_ms": s.p99,
                "api_us": h.us("api"), "nginx_us": h.us("nginx"), "static_nginx_us": s.us("nginx")}
        if args.json:
            print("HOP_JSON " + json.dumps(out))
        return 0


if __name__ == "__main__":
    sys.exit(main())
