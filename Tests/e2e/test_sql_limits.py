"""SQL API limits on a stack of its own (TESSERA_SQL_STATEMENT_TIMEOUT_MS=1000, TESSERA_SQL_MAX_ROWS=50):
statement timeout -> 429 + Retry-After (reliability.md L5, A3), session tricks that try to lift the
timeout, and the JSON row cap."""

from __future__ import annotations

import concurrent.futures as cf
import json
import time

import pytest

from helpers import Api, assert_error, assert_ok, warehouse

SLOW_SCOPED = "SELECT count(*) AS n FROM e2e_big a, e2e_big b, e2e_big c"


@pytest.fixture(scope="module")
def lapi(limits_stack):
    return Api(limits_stack)


@pytest.fixture(scope="module")
def ltoken(limits_stack):
    out = limits_stack.tessera("tokens", "create", "--email", limits_stack.admin_email, "--connection", "carto_dw",
                               "--source", "*", "--apis", "sql")
    return out.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def scoped_token(limits_stack):
    warehouse(limits_stack, "CREATE TABLE IF NOT EXISTS e2e_big AS SELECT g AS id FROM generate_series(1, 1000) g")
    out = limits_stack.tessera("tokens", "create", "--email", limits_stack.admin_email, "--connection", "carto_dw",
                               "--source", "public.e2e_big", "--apis", "sql")
    return out.strip().splitlines()[-1]


def assert_timeout(r, budget: float):
    doc = assert_error(r, 429, "statement_timeout")
    retry = r.header("Retry-After")
    assert retry is not None and retry.isdigit() and int(retry) >= 1, r.headers
    assert r.elapsed < budget, f"took {r.elapsed:.1f}s"
    assert "pg_sleep" not in doc["error"]
    return doc


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_statement_timeout_is_429(lapi, ltoken, method):
    assert_timeout(lapi.sql("SELECT pg_sleep(5)", ltoken, method=method), 3.0)
    # and the next, quick statement on the same pool is fine
    assert assert_ok(lapi.sql("SELECT 1 AS a", ltoken, method=method))["rows"] == [{"a": 1}]


def test_statement_timeout_for_scoped_token(lapi, scoped_token):
    assert_ok(lapi.sql("SELECT count(*) AS n FROM e2e_big", scoped_token))
    assert_timeout(lapi.sql(SLOW_SCOPED, scoped_token), 3.5)


def test_timeout_in_csv_before_first_row(lapi, ltoken):
    r = lapi.sql("SELECT pg_sleep(5) AS x", ltoken, fmt="csv")
    assert_timeout(r, 3.0)


@pytest.mark.parametrize("lift", [
    "SET statement_timeout = 0",
    "SET SESSION statement_timeout TO 0",
    "SET statement_timeout = '1h'",
    "SELECT set_config('statement_timeout', '0', false) AS s",
    "ALTER ROLE carto_dw SET statement_timeout = 0",
])
def test_lifting_the_timeout_does_not_outlive_the_request(lapi, ltoken, limits_stack, lift):
    """A3: the lift runs (or is refused) in one request; in the next ones pg_sleep is still cut off,
    whichever pooled connection they get."""
    try:
        for _ in range(3):
            r = lapi.sql(lift, ltoken, method="POST")
            assert r.status in (200, 403), r
        for _ in range(2):
            assert_timeout(lapi.sql("SELECT pg_sleep(6)", ltoken, method="POST"), 4.5)
    finally:
        warehouse(limits_stack, "ALTER ROLE carto_dw RESET statement_timeout")


def test_set_and_sleep_in_one_request(lapi, ltoken):
    r = lapi.sql("SET statement_timeout = 0; SELECT pg_sleep(5)", ltoken, method="POST")
    assert_error(r, 400)
    assert r.elapsed < 2


def test_scoped_token_cannot_lift_the_timeout(lapi, scoped_token):
    for lift in ("SET statement_timeout = 0", "SELECT set_config('statement_timeout', '0', false) FROM e2e_big"):
        r = lapi.sql(lift, scoped_token)
        assert r.status in (400, 403), r
    assert_timeout(lapi.sql(SLOW_SCOPED, scoped_token), 3.5)


def test_slow_queries_do_not_starve_fast_ones(lapi, ltoken):
    with cf.ThreadPoolExecutor(12) as pool:
        slow = [pool.submit(lapi.sql, "SELECT pg_sleep(10)", ltoken) for _ in range(4)]
        time.sleep(0.2)
        fast = [pool.submit(lapi.sql, f"SELECT {i} AS i", ltoken) for i in range(30)]
        for i, f in enumerate(fast):
            r = f.result()
            assert r.status == 200 and r.json()["rows"] == [{"i": i}], r
            assert r.elapsed < 2.5
        for f in slow:
            assert_timeout(f.result(), 3.5)


def test_json_row_cap(lapi, ltoken):
    doc = assert_ok(lapi.sql("SELECT g FROM generate_series(1, 120) AS g", ltoken))
    assert [r["g"] for r in doc["rows"]] == list(range(1, 51))
    meta = doc["meta"]
    assert meta["truncated"] is True and meta["maxRows"] == 50 and meta["rowCount"] == 50
    # exactly at the cap: not truncated
    doc = assert_ok(lapi.sql("SELECT g FROM generate_series(1, 50) AS g", ltoken))
    assert len(doc["rows"]) == 50 and "truncated" not in doc["meta"]
    # The cap is for the JSON format only: streamed formats deliver everything.
    r = lapi.sql("SELECT g FROM generate_series(1, 120) AS g", ltoken, fmt="csv")
    assert r.status == 200 and r.body.count(b"\r\n") == 121
    r = lapi.sql("SELECT g FROM generate_series(1, 120) AS g", ltoken, fmt="ndjson")
    assert r.status == 200 and [json.loads(x)["g"] for x in r.body.splitlines()] == list(range(1, 121))


def test_truncated_result_reports_command(lapi, ltoken):
    doc = assert_ok(lapi.sql("SELECT g FROM generate_series(1, 120) AS g", ltoken, method="POST"))
    assert doc["meta"]["truncated"] is True
    assert doc["meta"]["command"] in ("SELECT", ""), doc["meta"]


def test_stack_alive(limits_stack, lapi, ltoken):
    assert limits_stack.check_alive() == []
    assert_ok(lapi.sql("SELECT 1 AS a", ltoken))
