#!/usr/bin/env python3
"""Where the hop's cost goes, counted per request: syscalls (by name), context switches and CPU of maps-api and
of nginx's workers, for the hop (GET the health route from nginx's internal maps-backend server -> FastCGI ->
maps-api) and for nginx serving a static file of the same size, at the same concurrency. Unlike throughput,
syscall and context-switch counts hardly depend on the machine's load, so two builds can be compared on a
shared machine; the CPU columns do depend on it.

Syscalls: `perf stat -e raw_syscalls:sys_enter` attached to the threads; context switches (voluntary: the thread
waited; involuntary: it was preempted) and user/system CPU from /proc, one wrk run per path and client count.
--strace also counts syscalls by name with `strace -c -f` (it slows the traced process: counts only).
--record adds `perf record -g` of the hop. --callgrind instead runs maps-api under valgrind and counts its
user-space instructions per request: exact, and independent of the load, for comparing builds' user-space work.

usage: bench/hop-profile [--clients 1,2,8] [--seconds 5] [--bin .build/release] [--strace] [--record DIR]
                         [--callgrind DIR]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tiles_bench as tb  # noqa: E402
from hop_bench import hop_stack  # noqa: E402

EVENTS = "raw_syscalls:sys_enter"
TICK = os.sysconf("SC_CLK_TCK")


def threads_of(pids: list[int]) -> list[int]:
    return [int(t) for p in pids for t in os.listdir(f"/proc/{p}/task")]


def nginx_workers(master: int) -> list[int]:
    """The master's current workers (those of an earlier configuration exit after the bench's reload)."""
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    workers = []
    for pid in map(int, out.split()):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"worker process" in title and b"shutting down" not in title:
            workers.append(pid)
    return workers


def user_system(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds of these processes (all their threads) so far."""
    user = system = 0.0
    for pid in pids:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(f[11]) / TICK, system + int(f[12]) / TICK
    return user, system


def switches(pids: list[int]) -> tuple[int, int]:
    """Voluntary (waits) and involuntary (preemptions) context switches of these processes' threads so far."""
    vol = invol = 0
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol += int(line.split()[1])
            except FileNotFoundError:
                pass
    return vol, invol


def perf_stat(tids: list[int], out: Path) -> subprocess.Popen:
    return subprocess.Popen(["perf", "stat", "-x", ",", "-o", str(out), "-e", EVENTS, "-t",
                             ",".join(map(str, tids))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def parse_perf(path: Path) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in path.read_text().splitlines():
        parts = line.split(",")
        if len(parts) < 3 or line.startswith("#"):
            continue
        try:
            counts[parts[2]] = float(parts[0])
        except ValueError:
            pass
    return counts


def strace_counts(pids: list[int], out: Path) -> subprocess.Popen:
    args = ["strace", "-c", "-f", "-o", str(out)]
    for p in pids:
        args += ["-p", str(p)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def parse_strace(path: Path) -> dict[str, int]:
    calls: dict[str, int] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
        if m and m.group(2) != "total":
            calls[m.group(2)] = int(m.group(1))
    return calls


def record(out: Path, api_pid: int, workers: list[int], base: str, clients: int, seconds: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    files = {"api": out / "perf-api.data", "nginx": out / "perf-nginx.data"}
    procs = [subprocess.Popen(["perf", "record", "-g", "-F", "2000", "-o", str(files[s]), "-p",
                               ",".join(map(str, [api_pid] if s == "api" else workers))],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for s in files]
    time.sleep(0.5)
    tb.wrk(base, None, None, clients, seconds, path=tb.HEALTH_PATH)
    for p in procs:
        stop(p)
    for side, f in files.items():
        report = subprocess.run(["perf", "report", "-i", str(f), "--no-children", "--sort", "dso,sym",
                                 "--stdio", "-g", "none", "--percent-limit", "0.7"],
                                capture_output=True, text=True).stdout
        print(f"  perf record, hop c={clients}, {side} (self time by symbol, >= 0.7%):")
        for line in report.splitlines():
            if line.strip() and not line.startswith("#"):
                print("    " + line.strip())


def callgrind(stack: tb.Stack, src: Path, out: Path, base: str, seconds: int) -> int:
    """Restarts maps-api under callgrind, zeroes its counters after a warm-up, serves `seconds` of one client's
    requests, dumps and prints instructions per request (total and by inclusive function)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("callgrind.out.*"):
        old.unlink()
    wrapper = out / "maps-api-callgrind"
    wrapper.write_text(f"#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={out}/callgrind.out.%p "
                       f"{src.resolve() / tb.API_PROGRAMS['maps-api']} \"$@\"\n")
    wrapper.chmod(0o755)
    stack.stop_api("maps-api")
    stack.start_api("maps-api", wrapper, timeout=120)
    pid = stack.pid("maps-api")
    tb.wrk(base, None, None, 1, 3, path=tb.HEALTH_PATH)
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    w = tb.wrk(base, None, None, 1, seconds, path=tb.HEALTH_PATH)
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    dumps = sorted(out.glob("callgrind.out.*.*"), key=lambda f: f.stat().st_mtime)  # the dump after zeroing
    report = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=99", str(dumps[-1])],
                            capture_output=True, text=True).stdout
    total = re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", report)
    ir = int(total.group(1).replace(",", "")) if total else 0
    print(f"callgrind: {w.requests} requests, {ir / max(w.requests, 1):,.0f} instructions per request in maps-api "
          f"(user space); inclusive by function ({dumps[-1]}):")
    for line in report.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(\S.*)", line)
        if m and float(m.group(2)) >= 1.0 and "PROGRAM TOTALS" not in line:
            print(f"  {int(m.group(1).replace(',', '')) / max(w.requests, 1):>9,.0f} {m.group(2):>6}%  {m.group(3)[:150]}")
    return 0


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="1,2,8")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--bin", default=str(tb.REPO / ".build" / "release"))
    ap.add_argument("--strace", action="store_true", help="also count syscalls by name (strace -c -f)")
    ap.add_argument("--callgrind", metavar="DIR", help="instead: run maps-api under valgrind's callgrind and count "
                    "its user-space instructions per hop request (deterministic: no load dependence); "
                    "DIR/callgrind.out.* for callgrind_annotate")
    ap.add_argument("--record", metavar="DIR", help="also `perf record -g` the hop at the last client count into "
                    "DIR/perf-{api,nginx}.data and print each side's top symbols")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    for t in ("wrk", "perf") + (("strace",) if args.strace else ()):
        if not shutil.which(t):
            raise SystemExit(f"{t} is required")
    with hop_stack(Path(args.bin), "tessera-hopprof-") as (root, stack, base, static_base, size):
        if args.callgrind:
            return callgrind(stack, Path(args.bin), Path(args.callgrind), base, args.seconds)
        api_pid, nginx_pid = stack.pid("maps-api"), stack.pid("nginx")
        print(f"hop profile: GET {tb.HEALTH_PATH} vs static {size} B, {args.seconds}s per run; per request:"
              f" load {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
        print(f"  {'path':<7}{'c':>3} {'req/s':>7} | {'api sys':>7} {'cs vol/inv':>10} {'api us':>6} {'usr/sys':>9}"
              f" | {'ngx sys':>7} {'cs vol/inv':>10} {'ngx us':>6} {'usr/sys':>9}")
        names: dict[tuple[str, int, str], dict[str, int]] = {}
        for clients in [int(c) for c in args.clients.split(",")]:
            for key, url, path in (("hop", base, tb.HEALTH_PATH), ("static", static_base, "/hop.json")):
                tb.wrk(url, None, None, clients, 1, path=path)
                workers = nginx_workers(nginx_pid)
                sides = {"api": threads_of([api_pid]), "nginx": threads_of(workers)}
                outs = {s: root / f"perf-{s}.txt" for s in sides}
                procs = [perf_stat(t, outs[s]) for s, t in sides.items()]
                time.sleep(0.3)
                pids = {"api": [api_pid], "nginx": workers}
                cpu0 = {s: user_system(p) for s, p in pids.items()}
                cs0 = {s: switches(p) for s, p in pids.items()}
                w = tb.wrk(url, None, None, clients, args.seconds, path=path)
                cpu = {s: user_system(p) for s, p in pids.items()}
                cs = {s: switches(p) for s, p in pids.items()}
                for p in procs:
                    stop(p)
                n = w.requests
                row = f"  {key:<7}{clients:>3} {w.rps:>7.0f} |"
                for s in sides:
                    c = parse_perf(outs[s])
                    usr, sys_ = ((cpu[s][i] - cpu0[s][i]) * 1e6 / n for i in (0, 1))
                    vol, invol = ((cs[s][i] - cs0[s][i]) / n for i in (0, 1))
                    row += (f" {c.get('raw_syscalls:sys_enter', 0) / n:>7.2f} {vol:>4.2f}/{invol:<4.2f}"
                            f" {usr + sys_:>6.1f} {usr:>4.1f}/{sys_:<4.1f} |")
                print(row.rstrip("|"), flush=True)
                if args.strace:
                    outs = {s: root / f"strace-{s}.txt" for s in sides}
                    procs = [strace_counts([api_pid] if s == "api" else workers, outs[s]) for s in sides]
                    time.sleep(0.5)
                    w = tb.wrk(url, None, None, clients, args.seconds, path=path)
                    for p in procs:
                        stop(p)
                    for s in sides:
                        names[(key, clients, s)] = {k: v / w.requests for k, v in parse_strace(outs[s]).items()}
        if args.record:
            record(Path(args.record), api_pid, nginx_workers(nginx_pid), base, clients, args.seconds)
        for (key, clients, side), calls in names.items():
            top = sorted(calls.items(), key=lambda kv: -kv[1])
            print(f"  strace {key} c={clients} {side}: " + ", ".join(f"{k} {v:.2f}" for k, v in top if v >= 0.01))
        return 0


if __name__ == "__main__":
    sys.exit(main())
