"""Workspace events through the real programs: the workspace-api queues them as it deletes, the
workspace-subscriber applies them (grants, cache, jobs, ownership). Handler details and redelivery are
covered by Tests/IntegrationTests/WorkspaceEventsTests.swift."""

from __future__ import annotations

import pytest

import helpers as h
from helpers import assert_error, assert_ok, wait_until


@pytest.fixture(scope="module")
def subscriber(stack):
    if not stack.pid("workspace-subscriber"):
        pytest.fail("tessera-workspace-subscriber is not running (not built?)")
    return stack


def event_result(stack, kind: str, field: str, value: str) -> dict:
    """The result of the `workspace` job of `kind` whose payload has field = value, once completed."""
    import json

    sql = (f"SELECT result::text FROM jobs WHERE queue = 'workspace' AND kind = '{kind}' "
           f"AND payload->>'{field}' = '{value}' AND state = 'completed'")
    wait_until(lambda: h.metadata(stack, sql) != "", 15)
    return json.loads(h.metadata(stack, sql))


def test_deleted_connection_loses_grants_and_cached_answers(subscriber, api, admin, dw, dw_user):
    stack = subscriber
    name = h.unique("e2e_evt")
    assert_ok(api.post("/api/v3/connections", token=admin.token, json_body={"name": name, **dw_user}), 201)
    token = assert_ok(api.post("/api/v3/tokens", token=admin.token, json_body={"grants": [
        {"connection_name": name, "source": "public.e2e_places"},
        {"connection_name": "carto_dw", "source": "public.e2e_places"}]}), 201)
    q = "SELECT name FROM public.e2e_places ORDER BY cartodb_id"
    assert assert_ok(api.sql(q, token["token"], conn=name))["rows"][0] == {"name": "Alpha"}
    assert api.sql(q, token["token"], conn=name).header("X-Cache") == "HIT"  # cached by Varnish now

    assert api.delete(f"/api/v3/connections/{name}", token=admin.token).status == 204
    account = h.metadata(stack, f"SELECT account_id FROM users WHERE email = '{stack.admin_email}'")
    assert event_result(stack, "connection.deleted", "connectionName", name)["recreated"] is False
    grants = assert_ok(api.get(f"/api/v3/tokens/{token['id']}", token=admin.token))["grants"]
    assert [g["connection_name"] for g in grants] == ["carto_dw"]
    purges = h.metadata(stack, f"SELECT count(*) FILTER (WHERE state = 'completed') || '/' || count(*) FROM jobs "
                               f"WHERE queue = 'cdn' AND payload->'keys' ? 'conn:{account}:{name}'")
    done, total = map(int, purges.split("/"))
    assert total >= 3 and done >= 1, purges
    # The cached answer is gone: the deleted connection is not served from the http-cache.
    wait_until(lambda: api.sql(q, token["token"], conn=name).status == 404, 10)
    assert_ok(api.sql(q, token["token"]))  # the other grant still works


def test_removed_users_jobs_stop_and_their_credentials_are_revoked(subscriber, api, admin, dw):
    stack = subscriber
    email = f"{h.unique('leaver')}@example.com"
    inv = assert_ok(api.post("/api/v3/invitations", token=admin.token, json_body={"email": email, "role": "editor"}), 201)
    password = "leaver-Password-4821"
    user = assert_ok(api.post("/api/v3/auth/signup", json_body={"invitation": inv["token"], "password": password}), 201)["user"]
    leaver = h.signed_in_user(api, email, password, "e2e-leaver")  # owns an OAuth client now
    token = assert_ok(api.post("/api/v3/tokens", token=leaver.token, json_body={"grants": [
        {"connection_name": "carto_dw", "source": "public.e2e_places"}]}), 201)
    tag = h.unique("leaver_job")
    job = assert_ok(api.post("/api/v3/sql/carto_dw/job", token=leaver.token,
                             json_body={"query": f"SELECT pg_sleep(60) -- {tag}"}), 201)["jobId"]
    wait_until(lambda: h.active_queries(stack, tag) == 1, 15)

    assert api.delete(f"/api/v3/users/{user['id']}", token=admin.token).status == 204
    result = event_result(stack, "user.removed", "userId", user["id"])
    assert result["transferredTo"] == admin.id
    assert result["jobsCancelled"] == 1
    # Credentials are revoked (the removing transaction deleted them), never transferred: the removed
    # person knows their token strings and client secrets (issue 11, case 2).
    assert "tokens" not in result["moved"] and "oauthClients" not in result["moved"]
    assert h.metadata(stack, f"SELECT count(*) FROM api_tokens WHERE id = '{token['id']}'") == "0"
    assert h.metadata(stack, f"SELECT count(*) FROM oauth_clients WHERE user_id = '{user['id']}'") == "0"
    # Their running statement is stopped, and the token they made no longer works.
    wait_until(lambda: h.active_queries(stack, tag) == 0, 10)
    wait_until(lambda: h.metadata(stack, f"SELECT state FROM jobs WHERE id = {int(job)}") == "cancelled", 10)
    wait_until(lambda: api.sql("SELECT count(*) AS n FROM public.e2e_places", token["token"]).status == 401, 10)
    assert_error(api.get("/api/v3/me", token=leaver.token), 401)
