"""SQL batch jobs (contract §4.2) through the API and the real sql-worker: queued, run, reported,
cancelled; failures visible; nothing applied twice."""
from __future__ import annotations

import pytest

import helpers as h
from helpers import assert_error, assert_ok, wait_until

JOB = "/api/v3/sql/carto_dw/job"


@pytest.fixture(scope="module")
def jobs_table(stack):
    h.warehouse(stack, "DROP TABLE IF EXISTS e2e_jobs; CREATE TABLE e2e_jobs (id int PRIMARY KEY, n int NOT NULL);"
                       "INSERT INTO e2e_jobs SELECT g, 0 FROM generate_series(1, 10) g;")
    return "e2e_jobs"


def run_job(api, token, query, expect="success", **extra):
    """Queues a job. The POST's answer is a snapshot taken after the job is queued, and the worker may
    already have finished it by then: besides pending/running, the final state the test `expect`s is a
    legitimate answer, any other final state is not."""
    body = assert_ok(api.post(JOB, json_body={"query": query, **extra}, token=token), 201)
    assert body["status"] in ("pending", "running", expect) and body["jobId"], body
    return body["jobId"]


def final(api, token, job_id, timeout=20.0):
    state = {}

    def done():
        state.update(assert_ok(api.get(f"{JOB}/{job_id}", token=token)))
        return state["status"] in ("success", "failure", "cancelled")

    wait_until(done, timeout)
    return state


def test_job_runs_once_and_reports_success(api, stack, full_token, jobs_table):
    job_id = run_job(api, full_token, "UPDATE e2e_jobs SET n = n + 1 WHERE id <= $1", queryParameters=[5],
                     metadata={"purpose": "e2e"})
    body = final(api, full_token, job_id)
    assert body["status"] == "success", body
    assert body["result"]["affectedRows"] == 5
    assert body["metadata"] == {"purpose": "e2e"}
    assert h.warehouse(stack, "SELECT sum(n) FROM e2e_jobs") == "5"
    listed = assert_ok(api.get("/api/v3/sql/jobs", token=full_token))["results"]
    assert job_id in [j["jobId"] for j in listed]


def test_bad_statement_fails_with_its_error_and_is_not_retried(api, full_token, jobs_table):
    job_id = run_job(api, full_token, "UPDATE no_such_table SET x = 1", expect="failure")
    body = final(api, full_token, job_id)
    assert body["status"] == "failure"
    assert "no_such_table" in body["error"]["msg"]
    assert body["attempt"] == 1


def test_cancel_stops_a_running_statement(api, stack, full_token):
    job_id = run_job(api, full_token, "SELECT pg_sleep(60) -- e2e-cancel-me")
    wait_until(lambda: h.active_queries(stack, "e2e-cancel-me") == 1, 15)
    assert_ok(api.delete(f"{JOB}/{job_id}", token=full_token))
    body = final(api, full_token, job_id)
    assert body["status"] == "cancelled", body
    wait_until(lambda: h.active_queries(stack, "e2e-cancel-me") == 0, 5)


def test_scoped_tokens_and_other_orgs_cannot_use_jobs(api, make_token, other_org, full_token, jobs_table):
    scoped = make_token(["public.e2e_jobs"], allowed_apis=["sql"])["token"]
    assert_error(api.post(JOB, json_body={"query": "DELETE FROM e2e_jobs"}, token=scoped), 403, "source_not_granted")
    job_id = run_job(api, full_token, "SELECT 1")
    assert_error(api.get(f"{JOB}/{job_id}", token=other_org.token), 404, "job_not_found")
    assert_error(api.delete(f"{JOB}/{job_id}", token=other_org.token), 404, "job_not_found")
    assert_error(api.get(f"{JOB}/not-a-number", token=full_token), 404, "job_not_found")
    assert_error(api.post(JOB, json_body={}, token=full_token), 400, "missing_parameter")


def test_a_retried_job_does_not_apply_its_change_twice(api, stack, full_token, jobs_table):
    """A job whose completion was lost after its statement committed (crash between the two) runs
    again: the marker in the warehouse makes the retry a no-op."""
    before = int(h.warehouse(stack, "SELECT sum(n) FROM e2e_jobs"))
    job_id = run_job(api, full_token, "UPDATE e2e_jobs SET n = n + 1")
    assert final(api, full_token, job_id)["status"] == "success"
    # Simulate the lost completion: the job is made runnable again, the marker stays.
    h.metadata(stack, f"UPDATE jobs SET state = 'available', finished_at = NULL, run_at = now() WHERE id = {int(job_id)}")
    h.metadata(stack, f"SELECT pg_notify('tessera_jobs_sql', '{int(job_id)}')")
    body = final(api, full_token, job_id)
    assert body["status"] == "success" and body["result"] == {"alreadyApplied": True}
    assert int(h.warehouse(stack, "SELECT sum(n) FROM e2e_jobs")) == before + 10


def test_jobs_cli_lists_shows_retries_and_cancels(api, stack, full_token, jobs_table):
    import json
    job_id = run_job(api, full_token, "SELECT 42")
    assert final(api, full_token, job_id)["status"] == "success"
    listed = stack.tessera("jobs", "list", "--queue", "sql")
    assert any(line.split()[0] == job_id for line in listed.splitlines())
    shown = json.loads(stack.tessera("jobs", "show", job_id))
    assert shown["state"] == "completed" and shown["queue"] == "sql"
    assert "queued again" in stack.tessera("jobs", "retry", job_id)
    assert final(api, full_token, job_id)["status"] == "success"
    sleeper = run_job(api, full_token, "SELECT pg_sleep(60) -- e2e-cli-cancel")
    wait_until(lambda: h.active_queries(stack, "e2e-cli-cancel") == 1, 15)
    stack.tessera("jobs", "cancel", sleeper)
    assert final(api, full_token, sleeper)["status"] == "cancelled"


def test_a_job_that_writes_purges_the_cached_answers_of_its_connection(api, stack, full_token, jobs_table):
    """A SQL job's write goes through DataChange like every writer's: the cached GET answers of the connection
    are purged (the cdn-invalidator's `data_changed` job), not left stale in Varnish until they expire."""
    q = f"SELECT sum(n) AS total FROM e2e_jobs /* {h.unique()} */"
    first = api.sql(q, full_token)
    assert first.status == 200 and first.header("X-Cache") == "MISS", first.headers
    cached = api.sql(q, full_token)
    assert cached.status == 200 and cached.header("X-Cache") == "HIT", cached.headers
    before = int(cached.json()["rows"][0]["total"])
    since = h.metadata(stack, "SELECT coalesce(max(id), 0) FROM jobs")
    job_id = run_job(api, full_token, "UPDATE e2e_jobs SET n = n + 1")
    assert final(api, full_token, job_id)["status"] == "success"
    assert int(h.warehouse(stack, "SELECT sum(n) FROM e2e_jobs")) == before + 10
    purges = f"FROM jobs WHERE queue = 'cdn' AND kind = 'data_changed' AND id > {since} AND payload->>'connection' = 'carto_dw'"
    assert int(h.metadata(stack, f"SELECT count(*) {purges}")) >= 1, "the job's write queued no purge"
    # The first pass runs at once; waiting for it makes the next GET's outcome certain.
    wait_until(lambda: h.metadata(stack, f"SELECT state {purges} ORDER BY id LIMIT 1") == "completed", 20)
    after = api.sql(q, full_token)
    assert after.status == 200 and after.header("X-Cache") == "MISS", after.headers
    assert int(after.json()["rows"][0]["total"]) == before + 10
