"""Job queue faults against the real workers (reliability.md F4, F5, F6/F7, F9; issue 4 §9). kill -9 of an
import-worker mid-import is in test_imports.py. The sql-worker runs here with a 4 s lease and a 2 s soft
stop (TESSERA_WORKER_LEASE_S, TESSERA_WORKER_SOFT_STOP_S) so every case ends in seconds.

Effects are rows in a ledger table keyed by a tag per job: "exactly once" means one row per tag."""

from __future__ import annotations

import json
import signal

import pytest

import helpers as h
from helpers import assert_ok, wait_until

JOB = "/api/v3/sql/carto_dw/job"
WORKER_ENV = {"TESSERA_WORKER_LEASE_S": "4", "TESSERA_WORKER_SOFT_STOP_S": "2"}


@pytest.fixture(scope="module")
def sqlw(stack, dw):
    """The sql-worker restarted with short lease and soft stop; the default one is back afterwards."""
    if not (h.BIN / "tessera-sql-worker").is_file():
        pytest.fail("tessera-sql-worker not built")
    h.warehouse(stack, "DROP TABLE IF EXISTS e2e_ledger, e2e_naps; CREATE TABLE e2e_ledger (tag text NOT NULL);"
                       "CREATE TABLE e2e_naps (tag text PRIMARY KEY, secs float8 NOT NULL)")
    restart_sql_worker(stack, WORKER_ENV)
    yield stack
    restart_sql_worker(stack, {})


def restart_sql_worker(stack, env):
    if stack.pid("sql-worker"):
        stack.stop_api("sql-worker")
    stack.start_worker("sql-worker", h.BIN / "tessera-sql-worker", env=env)


def submit(api, token, tag: str, sql: str = "INSERT INTO e2e_ledger VALUES ($1)") -> str:
    """A batch job whose effect is one ledger row for `tag` (the tag is also in the text, to find it running)."""
    body = assert_ok(api.post(JOB, json_body={"query": f"{sql} -- {tag}", "queryParameters": [tag]}, token=token), 201)
    return body["jobId"]


def final(api, token, job_id, timeout=30.0) -> dict:
    state = {}

    def done():
        state.update(assert_ok(api.get(f"{JOB}/{job_id}", token=token)))
        return state["status"] in ("success", "failure", "cancelled")

    wait_until(done, timeout, 0.1)
    return state


# A job that sleeps as long as its row in e2e_naps says (read when the statement runs), then writes its row.
NAPPING = "INSERT INTO e2e_ledger SELECT $1 FROM pg_sleep((SELECT coalesce(max(secs), 0) FROM e2e_naps WHERE tag = $1))"


def nap(stack, tag: str, secs: float) -> None:
    h.warehouse(stack, f"INSERT INTO e2e_naps VALUES ('{tag}', {secs}) ON CONFLICT (tag) DO UPDATE SET secs = excluded.secs")


def napping_job(stack, api, token, prefix: str, secs: float) -> tuple[str, str]:
    """Submits a job that sleeps `secs` before writing its row and waits until it runs: (tag, job id)."""
    tag = h.unique(prefix)
    nap(stack, tag, secs)
    job_id = submit(api, token, tag, NAPPING)
    wait_until(lambda: h.active_queries(stack, tag) == 1, 15)
    return tag, job_id


def ledger(stack, tag: str) -> int:
    return int(h.warehouse(stack, f"SELECT count(*) FROM e2e_ledger WHERE tag = '{tag}'"))


def insert_job(stack, queue: str, kind: str, payload: dict, account: str | None = None, notify: bool = True) -> int:
    """A job inserted with plain SQL; without `notify` no NOTIFY is sent, so only polling can find it."""
    values = "'" + json.dumps(payload).replace("'", "''") + "'"
    account_sql = f"'{account}'" if account else "NULL"
    job_id = int(h.metadata(stack, f"INSERT INTO jobs (queue, kind, payload, account_id) VALUES "
                                   f"('{queue}', '{kind}', {values}::jsonb, {account_sql}) RETURNING id").split()[0])
    if notify:
        h.metadata(stack, f"SELECT pg_notify('tessera_jobs_{queue}', '{job_id}')")
    return job_id


def job_row(stack, job_id: int) -> dict:
    out = h.metadata(stack, f"SELECT json_build_object('state', state, 'attempt', attempt, 'errors', errors, "
                            f"'result', result)::text FROM jobs WHERE id = {job_id}")
    return json.loads(out)


def wait_state(stack, job_id: int, states=("completed", "discarded", "cancelled"), timeout=20.0) -> dict:
    row = {}

    def done():
        row.update(job_row(stack, job_id))
        return row["state"] in states

    wait_until(done, timeout, 0.1)
    return row


def account_of(stack, email: str) -> str:
    return h.metadata(stack, f"SELECT account_id FROM users WHERE email = '{email}'").strip()


def one_job_per_worker(stack, notify: bool = True) -> list[int]:
    """Cheap no-op jobs for the sql-worker, the cdn-invalidator and the workspace-subscriber."""
    account = account_of(stack, stack.admin_email)
    ids = [insert_job(stack, "sql", "batch_query", {"connection": "carto_dw", "query": "SELECT 1"}, account, notify),
           insert_job(stack, "cdn", "purge", {"keys": ["src:e2e-faults-nothing"]}, account, notify)]
    if (h.BIN / "tessera-workspace-subscriber").is_file():
        ids.append(insert_job(stack, "workspace", "dataset.deleted",
                              {"accountId": account, "connection": "carto_dw", "source": "public.e2e_nothing"}, account, notify))
    return ids


# ---- PostgreSQL restarted (F5) ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_while_workers_are_idle(sqlw, api, full_token, mode):
    stack = sqlw
    for job_id in one_job_per_worker(stack):
        assert wait_state(stack, job_id)["state"] == "completed"
    stack.restart_postgres(mode)
    for job_id in one_job_per_worker(stack):
        row = wait_state(stack, job_id)
        assert row["state"] == "completed", row
    tag = h.unique("idle")
    assert final(api, full_token, submit(api, full_token, tag))["status"] == "success"
    assert ledger(stack, tag) == 1
    assert stack.check_alive() == []


def test_postgres_restart_while_a_job_runs_finishes_it_exactly_once(sqlw, api, full_token):
    stack = sqlw
    tag, job_id = napping_job(stack, api, full_token, "busy", 30)
    queued = h.unique("queued")
    queued_id = submit(api, full_token, queued)  # waits behind the busy one or runs on the second thread
    # The harness runs PostgreSQL with synchronous_commit=off, so a crash would also lose the last
    # commits (the enqueue above); a checkpoint makes them durable first, as they are in production.
    stack.psql("CHECKPOINT")
    stack.restart_postgres("immediate")
    nap(stack, tag, 0)  # the cut statement rolled back; its retry need not sleep again
    body = final(api, full_token, job_id, 60)
    assert body["status"] == "success", body
    assert body["attempt"] >= 2, body
    assert final(api, full_token, queued_id, 30)["status"] == "success"
    assert ledger(stack, tag) == 1
    assert ledger(stack, queued) == 1
    assert stack.check_alive() == []


# ---- NOTIFY suppressed (F6/F7) ----------------------------------------------------------------------


def test_jobs_inserted_without_notify_still_run_by_polling(sqlw):
    stack = sqlw
    for job_id in one_job_per_worker(stack, notify=False):
        row = wait_state(stack, job_id)
        assert row["state"] == "completed", row


def test_listen_connections_killed_jobs_still_run(sqlw):
    """Every worker's LISTEN session is terminated (its channel never fires again until it reconnects);
    jobs inserted without NOTIFY right after still run."""
    stack = sqlw
    killed = stack.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = 'tessera' AND pid <> pg_backend_pid() "
                        "AND (query LIKE 'LISTEN %' OR (query = 'SELECT 1' AND state = 'idle'))")
    assert int(killed) >= 1
    for job_id in one_job_per_worker(stack, notify=False):
        assert wait_state(stack, job_id)["state"] == "completed"
    assert stack.check_alive() == []


# ---- poison jobs (F9) -------------------------------------------------------------------------------


def test_poison_job_is_discarded_after_its_attempts_while_others_flow(sqlw, api, full_token):
    """The poison statement kills its own session on every attempt (a retryable failure, like a crash)."""
    stack = sqlw
    poison = submit(api, full_token, h.unique("poison"), "SELECT pg_terminate_backend(pg_backend_pid()) WHERE $1::text IS NOT NULL")
    tags = [h.unique("flow") for _ in range(10)]
    ids = [submit(api, full_token, t) for t in tags]
    for job_id in ids:
        assert final(api, full_token, job_id)["status"] == "success"
    assert all(ledger(stack, t) == 1 for t in tags)
    body = final(api, full_token, poison, 60)
    assert body["status"] == "failure", body
    row = job_row(stack, int(poison))
    assert row["state"] == "discarded" and row["attempt"] == 3, row
    assert len(row["errors"]) == 3 and all(e["error"] for e in row["errors"]), row
    assert stack.check_alive() == []


# ---- SIGTERM during a long job (F4) -----------------------------------------------------------------


def test_sigterm_lets_a_short_job_finish(sqlw, api, full_token):
    stack = sqlw
    tag, job_id = napping_job(stack, api, full_token, "finish", 1)
    try:
        assert stack.stop_api("sql-worker", signal.SIGTERM, timeout=15) == 0  # exited by itself, not SIGKILLed
        row = job_row(stack, int(job_id))
        assert row["state"] == "completed", row
        assert ledger(stack, tag) == 1
    finally:
        restart_sql_worker(stack, WORKER_ENV)


def test_sigterm_releases_a_long_job_for_an_immediate_rerun(sqlw, api, full_token):
    stack = sqlw
    tag, job_id = napping_job(stack, api, full_token, "release", 30)
    try:
        assert stack.stop_api("sql-worker", signal.SIGTERM, timeout=15) == 0
        row = job_row(stack, int(job_id))
        # Released (not left running until its lease expires), without using up an attempt.
        assert row["state"] == "available" and row["attempt"] == 0, row
        assert h.active_queries(stack, tag) == 0, "the statement was cancelled"
        assert ledger(stack, tag) == 0
        nap(stack, tag, 0)
    finally:
        restart_sql_worker(stack, WORKER_ENV)
    assert final(api, full_token, job_id)["status"] == "success"
    assert ledger(stack, tag) == 1
