#!/usr/bin/env python3
"""Job queue throughput and enqueue->start latency with the real worker runtime.

A throwaway PostgreSQL (Tests/harness/stack.py) with the metadata schema, and the real
`tessera-cdn-invalidator` with no http-cache configured, so its `purge` jobs are no-ops: what is
measured is the queue (claim, lease, heartbeat, completion) and the worker runtime, not the work.

- throughput: N jobs committed at once (one transaction, one NOTIFY), then drained; jobs/s is
  N / (last finished_at - first started_at), from the database's own clock.
- floor: the same claim and completion statements the worker sends, run by pgbench (prepared, as
  many clients as worker threads) over the same number of queued jobs: the database's own cost,
  which no worker can beat. The ratio worker / floor is what the worker runtime adds.
- latency: single-job enqueue transactions (INSERT + pg_notify, as JobQueue.enqueue does) at a
  steady rate with pgbench -R; enqueue->start is started_at - created_at of each job.

usage: bench/queue [--jobs 20000] [--concurrency 2,4] [--rate 200] [--seconds 5] [--bin .build/release]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from benchlib import DEFAULT_BIN, cpu_seconds, require, throwaway_stack
from stack import Stack

WORKER = "cdn-invalidator"
PAYLOAD = '{"keys": ["bench"], "run": "%s"}'


def metadata(stack: Stack, sql: str) -> str:
    return stack.psql(sql, dbname="tessera", user="tessera")


def wait_done(stack: Stack, run: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = int(metadata(stack, f"SELECT count(*) FROM jobs WHERE payload->>'run' = '{run}' AND state = 'completed'"))
        if done >= n:
            return
        time.sleep(0.2)
    raise SystemExit(f"{run}: only {done}/{n} jobs completed after {timeout:.0f}s")


def throughput(stack: Stack, run: str, n: int, worker_pid: int) -> tuple[float, float]:
    cpu0 = cpu_seconds(worker_pid)
    metadata(stack, f"BEGIN; INSERT INTO jobs (queue, kind, payload) SELECT 'cdn', 'purge', '{PAYLOAD % run}'::jsonb "
                    f"FROM generate_series(1, {n}); SELECT pg_notify('tessera_jobs_cdn', 'bench'); COMMIT;")
    wait_done(stack, run, n, 600)
    cpu_us = (cpu_seconds(worker_pid) - cpu0) / n * 1e6
    span = float(metadata(stack, f"SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM jobs "
                                 f"WHERE payload->>'run' = '{run}'"))
    return n / span, cpu_us


# JobQueue.claim and JobQueue.complete, as the worker sends them (Job.columns too, but timestamps as ::text:
# pgbench would read the colons of to_char's format as variables).
CLAIM = """UPDATE jobs j SET state = 'running', attempt = j.attempt + 1, locked_by = 'floor', lease_token = gen_random_uuid(),
lease_until = now() + make_interval(secs => 30), started_at = coalesce(j.started_at, now())
FROM (SELECT id AS ready_id FROM jobs WHERE queue = 'cdn' AND state IN ('available', 'retryable') AND run_at <= now()
ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) ready WHERE j.id = ready.ready_id
RETURNING id AS job_id, queue, kind, payload::text, state, attempt, max_attempts, account_id, lease_token::text AS tok,
progress::text, result::text, errors::text, created_at::text, started_at::text, finished_at::text, cancel_requested \\gset
UPDATE jobs SET state = 'completed', result = '{"purged": 0}'::jsonb, finished_at = now(), lease_token = NULL, lease_until = NULL,
locked_by = NULL WHERE id = :job_id AND lease_token = :tok::uuid AND state = 'running';
"""


def floor(stack: Stack, run: str, n: int, clients: int) -> float:
    metadata(stack, f"INSERT INTO jobs (queue, kind, payload) SELECT 'cdn', 'purge', '{PAYLOAD % run}'::jsonb "
                    f"FROM generate_series(1, {n - n % clients})")
    script = stack.root / "floor.sql"
    script.write_text(CLAIM)
    started = time.monotonic()
    r = subprocess.run(["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients), "-t", str(n // clients),
                        "-f", str(script), stack.dsn("tessera", "tessera")], capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if r.returncode != 0:
        raise SystemExit(f"pgbench failed:\n{r.stdout}\n{r.stderr}")
    return (n - n % clients) / elapsed


def latency(stack: Stack, run: str, rate: int, seconds: int) -> tuple[int, str]:
    script = stack.root / f"{run}.sql"
    script.write_text(
        "BEGIN;\n"
        f"INSERT INTO jobs (queue, kind, payload) VALUES ('cdn', 'purge', '{PAYLOAD % run}') RETURNING id AS job_id \\gset\n"
        "SELECT pg_notify('tessera_jobs_cdn', :job_id::text);\n"
        "END;\n")
    r = subprocess.run(["pgbench", "-n", "-c", "1", "-R", str(rate), "-T", str(seconds), "-f", str(script),
                        stack.dsn("tessera", "tessera")], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"pgbench failed:\n{r.stdout}\n{r.stderr}")
    n = int(metadata(stack, f"SELECT count(*) FROM jobs WHERE payload->>'run' = '{run}'"))
    wait_done(stack, run, n, 60)
    ms = metadata(stack, "SELECT round((percentile_cont(0.5) WITHIN GROUP (ORDER BY l))::numeric, 2) || ' ' || "
                         "round((percentile_cont(0.99) WITHIN GROUP (ORDER BY l))::numeric, 2) || ' ' || round(max(l)::numeric, 2) "
                         f"FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 AS l FROM jobs "
                         f"WHERE payload->>'run' = '{run}') t")
    return n, ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--concurrency", default="2,4")
    ap.add_argument("--rate", type=int, default=200, help="enqueues per second in the latency run")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--bin", default=DEFAULT_BIN)
    args = ap.parse_args()
    bin_dir = Path(args.bin).resolve()
    require("pgbench", "postgresql-contrib")
    with throwaway_stack(bin_dir) as stack:
        print(f"{'threads':>7} {'jobs':>7} {'floor/s':>8} {'jobs/s':>8} {'ratio':>5} {'worker CPU/job':>15}   "
              f"enqueue->start ms at {args.rate}/s: p50 p99 max")
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            raw = floor(stack, f"floor{concurrency}", args.jobs, concurrency)
            metadata(stack, "TRUNCATE jobs")
            env = {"TESSERA_VARNISH_PURGE_URL": "", "TESSERA_WORKER_CONCURRENCY": str(concurrency)}
            stack.start_worker(WORKER, bin_dir / "tessera-cdn-invalidator", env=env)
            pid = stack.pid(WORKER)
            throughput(stack, f"warm{concurrency}", 500, pid)
            rate, cpu_us = throughput(stack, f"tput{concurrency}", args.jobs, pid)
            n, ms = latency(stack, f"lat{concurrency}", args.rate, args.seconds)
            print(f"{concurrency:>7} {args.jobs:>7} {raw:>8.0f} {rate:>8.0f} {rate / raw:>5.2f} {cpu_us:>12.0f} µs   {ms}  ({n} jobs)")
            stack.stop_api(WORKER)
            metadata(stack, "TRUNCATE jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
