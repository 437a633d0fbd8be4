"""Authentication and authorization matrix (reliability.md A1, A4, A5, A11, A12; carto-v3-api.md §1.2,
§7, §8): missing/malformed/forged/expired/revoked credentials, grants, allowed APIs, referers and
organisations."""

from __future__ import annotations

import time

import pytest

from helpers import (SQL_PATH, assert_error, assert_ok, b64url, jwt_claims, metadata, mint_jwt, signing_key,
                     wait_until)

PLACES_Q = "SELECT cartodb_id, name FROM e2e_places ORDER BY cartodb_id"
WORKSPACE_GETS = ["/api/v3/tokens", "/api/v3/connections", "/api/v3/me", "/api/v3/users"]


# ---- no / bad credentials ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sql_without_token(api, method, dw):
    doc = assert_error(api.sql(PLACES_Q, None, method=method), 401, "token_missing")
    assert doc["error"] == "Token not defined"


@pytest.mark.parametrize("path", WORKSPACE_GETS)
def test_workspace_without_token(api, path):
    doc = assert_error(api.get(path), 401, "token_missing")
    assert doc["error"] == "Token not defined"


def test_malformed_tokens(api, full_token, dw):
    header, payload, signature = full_token.split(".")
    swapped = b64url(b'{"a":"x","jti":"y"}')
    bad = {
        "garbage": "not-a-token",
        "two parts": f"{header}.{payload}",
        "empty signature": f"{header}.{payload}.",
        "bad base64": f"{header}.{payload}.!!!!",
        "flipped signature": f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
        "payload swapped": f"{header}.{swapped}.{signature}",
        "huge": "a" * 9000,
    }
    for label, token in bad.items():
        doc = assert_error(api.sql(PLACES_Q, token), 401, "invalid_token")
        assert token not in doc["error"], label
    for scheme in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc", full_token):
        assert_error(api.sql(PLACES_Q, headers={"Authorization": scheme}), 401, "invalid_token")


def test_access_token_query_parameter_and_header_precedence(api, full_token, dw):
    path = SQL_PATH.format(conn="carto_dw")
    assert_ok(api.get(path, params={"q": PLACES_Q, "access_token": full_token}))
    # The header wins over the query parameter, in both directions.
    assert_error(api.get(path, params={"q": PLACES_Q, "access_token": full_token},
                         headers={"Authorization": "Bearer nope"}), 401, "invalid_token")
    assert_ok(api.get(path, params={"q": PLACES_Q, "access_token": "nope"}, token=full_token))


class TestForgedJWTs:
    """A11: alg none, wrong key, key confusion, time and audience claims, header tricks."""

    def test_alg_none_and_wrong_key(self, api, admin, full_token, dw):
        for good in (admin.token, full_token):
            claims = jwt_claims(good)
            for header in ({"alg": "none", "typ": "JWT"}, {"alg": "None"}, {"alg": "NONE", "typ": "JWT"}):
                assert_error(api.sql(PLACES_Q, mint_jwt(None, claims, header)), 401, "invalid_token")
                assert_error(api.sql(PLACES_Q, mint_jwt(b"", claims, header)), 401, "invalid_token")
            assert_error(api.sql(PLACES_Q, mint_jwt(b"wrong-key", claims)), 401, "invalid_token")
            # RS256/HS512 headers signed with the real HS256 key: the algorithm allow-list is exactly HS256.
            for alg in ("RS256", "HS512", "ES256"):
                forged = mint_jwt(signing_key(api.stack), claims, {"alg": alg, "typ": "JWT"})
                assert_error(api.sql(PLACES_Q, forged), 401, "invalid_token")
        assert_error(api.get("/api/v3/me", token=mint_jwt(None, jwt_claims(admin.token), {"alg": "none"})),
                     401, "invalid_token")

    def test_claims_checked(self, api, stack, admin):
        key = signing_key(stack)
        claims = jwt_claims(admin.token)
        now = int(time.time())
        assert_ok(api.get("/api/v3/me", token=mint_jwt(key, claims)))  # control: the minting is right
        assert_error(api.get("/api/v3/me", token=mint_jwt(key, {**claims, "exp": now - 5})), 401, "token_expired")
        assert_error(api.get("/api/v3/me", token=mint_jwt(key, {**claims, "nbf": now + 3600})), 401, "invalid_token")
        assert_error(api.get("/api/v3/me", token=mint_jwt(key, {**claims, "aud": "other-api"})), 401, "invalid_token")
        assert_error(api.get("/api/v3/me", token=mint_jwt(key, {**claims, "exp": "tomorrow"})), 401, "invalid_token")
        no_aud = {k: v for k, v in claims.items() if k != "aud"}
        assert_error(api.get("/api/v3/me", token=mint_jwt(key, no_aud)), 401, "invalid_token")
        for header in ({"alg": "HS256", "typ": "at+jwt"}, {"alg": "HS256", "jku": "https://evil.example/jwks"},
                       {"alg": "HS256", "x5u": "https://evil.example/cert"},
                       {"alg": "HS256", "jwk": {"kty": "oct", "k": "AAAA"}}, {"alg": "HS256", "crit": ["exp"]}):
            assert_error(api.get("/api/v3/me", token=mint_jwt(key, claims, header)), 401, "invalid_token")

    def test_user_of_another_account(self, api, stack, admin, other_org):
        """A validly signed OAuth token naming a user in another account is not honoured."""
        key = signing_key(stack)
        claims = jwt_claims(admin.token)
        mixed = {**claims, "http://app.carto.com/account_id": jwt_claims(other_org.token)["http://app.carto.com/account_id"]}
        assert api.get("/api/v3/me", token=mint_jwt(key, mixed)).status == 401

    def test_unknown_kid(self, api, stack, admin):
        token = mint_jwt(signing_key(stack), jwt_claims(admin.token), {"alg": "HS256", "typ": "JWT", "kid": "other"})
        assert_error(api.get("/api/v3/me", token=token), 401)


# ---- expiry and revocation ------------------------------------------------------------------


def test_expired_api_token(api, make_token, dw):
    expires = time.time() + 3
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires + 1))
    body = make_token(["public.e2e_places"], expiration_date=stamp)
    assert body["expiration_date"] == stamp
    assert_ok(api.sql(PLACES_Q, body["token"]))
    time.sleep(max(0.0, expires + 1.2 - time.time()))
    assert_error(api.sql(PLACES_Q, body["token"]), 401, "token_expired")
    assert_error(api.sql(PLACES_Q, body["token"], method="POST"), 401, "token_expired")


def test_revoked_api_token_through_the_api(api, admin, make_token, dw):
    body = make_token(["public.e2e_places"])
    assert_ok(api.sql(PLACES_Q, body["token"]))  # now cached
    r = api.delete(f"/api/v3/tokens/{body['id']}", token=admin.token)
    assert r.status == 204, r
    took = wait_until(lambda: api.sql(PLACES_Q, body["token"]).status == 401, timeout=5)
    assert took <= 5
    assert_error(api.sql(PLACES_Q, body["token"]), 401, "token_revoked")
    assert_error(api.sql(PLACES_Q, body["token"], method="POST"), 401, "token_revoked")


def test_revoked_while_redis_still_holds_it(api, stack, make_token, dw):
    """The row disappears behind the API's back (another VM, a lost invalidation): the Redis entry still
    exists, yet the token is refused within 5 s (A12)."""
    body = make_token(["public.e2e_places"])
    assert_ok(api.sql(PLACES_Q, body["token"]))
    key = f"tessera:token:{body['id']}"
    assert stack.redis_command("EXISTS", key) == b":1\r\n", "the token lookup is cached in Redis"
    metadata(stack, f"DELETE FROM api_tokens WHERE id = '{body['id']}'")
    deleted_at = time.monotonic()
    assert stack.redis_command("EXISTS", key) == b":1\r\n"
    wait_until(lambda: api.sql(PLACES_Q, body["token"]).status == 401, timeout=6, interval=0.2)
    assert time.monotonic() - deleted_at <= 5.5
    assert_error(api.sql(PLACES_Q, body["token"]), 401, "token_revoked")


def test_deleted_oauth_client_revokes_its_tokens(api, admin):
    from helpers import oauth_token

    token, client_id, _ = oauth_token(api, admin.session, "short-lived")
    assert_ok(api.get("/api/v3/me", token=token))
    assert_ok(api.sql("SELECT 1 AS a", token))
    assert api.delete(f"/api/v3/oauth-clients/{client_id}", token=admin.token).status == 204
    wait_until(lambda: api.get("/api/v3/me", token=token).status == 401, timeout=5.5, interval=0.2)
    assert_error(api.get("/api/v3/me", token=token), 401, "token_revoked")
    assert_error(api.sql("SELECT 1 AS a", token), 401, "token_revoked")


# ---- grants ----------------------------------------------------------------------------------


def test_granted_table(api, make_token, dw):
    token = make_token(["public.e2e_places"])["token"]
    for method in ("GET", "POST"):
        doc = assert_ok(api.sql(PLACES_Q, token, method=method))
        assert [r["cartodb_id"] for r in doc["rows"]] == [1, 2, 3, 4]
    # Unqualified and database-qualified grant spellings and query spellings are the same table.
    token2 = make_token(["e2e_places"])["token"]
    for q in (PLACES_Q, "SELECT count(*) AS n FROM public.e2e_places", 'SELECT name FROM "e2e_places" LIMIT 1',
              "SELECT p.name FROM e2e_places p WHERE p.population > $1"):
        params = [150] if "$1" in q else None
        assert_ok(api.sql(q, token2, query_parameters=params))


def test_out_of_grant_table(api, make_token, dw):
    token = make_token(["public.e2e_places"])["token"]
    for q in ("SELECT * FROM e2e_secret", "SELECT * FROM public.e2e_secret", "SELECT * FROM e2e_s.t1"):
        for method in ("GET", "POST"):
            doc = assert_error(api.sql(q, token, method=method), 403, "source_not_granted")
            assert "the-secret-value" not in doc["error"]


def test_schema_wildcard_grant(api, make_token, dw):
    token = make_token(["e2e_s.*"])["token"]
    assert assert_ok(api.sql("SELECT a FROM e2e_s.t1 ORDER BY a", token))["rows"] == [{"a": 1}, {"a": 2}]
    assert_ok(api.sql("SELECT a, b FROM e2e_s.t1, e2e_s.t2", token))
    assert_error(api.sql(PLACES_Q, token), 403, "source_not_granted")


def test_star_grant_is_everything(api, make_token, dw):
    token = make_token(["*"])["token"]
    assert_ok(api.sql("SELECT * FROM e2e_secret", token))
    assert_ok(api.sql("SELECT * FROM generate_series(1, 3)", token))


def test_granted_sql_runs_verbatim_only(api, make_token, dw):
    granted = "SELECT cartodb_id, name FROM e2e_places WHERE population >= 200 ORDER BY cartodb_id"
    token = make_token([granted])["token"]
    doc = assert_ok(api.sql(granted, token))
    assert [r["cartodb_id"] for r in doc["rows"]] == [2, 3]
    assert_ok(api.sql(granted, token, method="POST"))
    # Outer whitespace and a trailing semicolon do not matter; inside, every character counts (issue 11,
    # case 6: collapsing whitespace let a `-- comment` line swallow the rest of a one-line query).
    assert_ok(api.sql("  " + granted + " ;\n", token))
    altered = [
        granted.replace(" ", "\n  "),
        granted.replace("200", "0"),
        granted + " LIMIT 1",
        granted.replace("cartodb_id, name", "*"),
        granted.replace("e2e_places", "e2e_secret"),
        "SELECT secret FROM e2e_secret",
        granted.replace("ORDER BY cartodb_id", "OR 1=1 ORDER BY cartodb_id"),
        granted.lower(),
    ]
    for q in altered:
        assert_error(api.sql(q, token), 403, "source_not_granted")


def test_granted_sql_with_a_table_grant_does_not_leak_tables(api, make_token, dw):
    token = make_token(["SELECT 1 AS one", "e2e_s.t1"])["token"]
    assert_ok(api.sql("SELECT 1 AS one", token))
    assert_ok(api.sql("SELECT a FROM e2e_s.t1", token))
    assert_error(api.sql("SELECT * FROM e2e_secret", token), 403, "source_not_granted")


def test_grant_on_another_connection_only(api, admin, make_token, stack, dw, dw_user):
    name = "e2e_second_conn"
    r = api.post("/api/v3/connections", token=admin.token, json_body={"name": name, **dw_user})
    assert r.status in (201, 409), r
    token = make_token([(name, "*")])["token"]
    assert_ok(api.sql("SELECT 1 AS a", token, conn=name))
    assert_error(api.sql("SELECT 1 AS a", token, conn="carto_dw"), 403, "source_not_granted")


# ---- APIs, referers, users ---------------------------------------------------------------------


def test_token_without_sql_api(api, make_token, dw):
    token = make_token(["public.e2e_places"], allowed_apis=["maps"])["token"]
    for method in ("GET", "POST"):
        assert_error(api.sql(PLACES_Q, token, method=method), 403, "api_not_allowed")


@pytest.mark.parametrize("path", WORKSPACE_GETS)
def test_api_token_cannot_use_workspace_apis(api, full_token, path):
    assert_error(api.get(path, token=full_token), 403, "user_token_required")


def test_api_token_cannot_manage_tokens(api, full_token):
    r = api.post("/api/v3/tokens", token=full_token,
                 json_body={"grants": [{"connection_name": "carto_dw", "source": "*"}]})
    assert_error(r, 403, "user_token_required")


def test_referer_restricted_token(api, make_token, dw):
    token = make_token(["public.e2e_places"], referers=["https://app.example.com", "https://*.maps.example.org"])["token"]
    assert_error(api.sql(PLACES_Q, token), 403, "referer_not_allowed")
    for bad in ({"Origin": "https://evil.example.com"}, {"Origin": "http://app.example.com"},
                {"Origin": "https://app.example.com.evil.net"}, {"Referer": "https://evil.example.com/app.example.com"},
                {"Origin": "https://maps.example.org"}, {"Origin": "null"}):
        assert_error(api.sql(PLACES_Q, token, headers=bad), 403, "referer_not_allowed")
    for good in ({"Origin": "https://app.example.com"}, {"Referer": "https://app.example.com/some/page?x=1"},
                 {"Origin": "https://a.maps.example.org"}):
        assert_ok(api.sql(PLACES_Q, token, headers=good))
    assert_ok(api.sql(PLACES_Q, token, method="POST", headers={"Origin": "https://app.example.com"}))


def test_oauth_and_session_users_run_sql(api, admin, dw):
    assert_ok(api.sql("SELECT * FROM e2e_secret", admin.token))
    assert_ok(api.sql("SELECT * FROM e2e_secret", session=admin.session))


# ---- organisations (A5) ------------------------------------------------------------------------


def test_other_organisation_cannot_see_carto_dw(api, other_org, admin, dw):
    assert_error(api.sql("SELECT 1", other_org.token), 404, "connection_not_found")
    assert_error(api.sql("SELECT 1", other_org.token, method="POST"), 404, "connection_not_found")
    assert_error(api.get("/api/v3/connections/carto_dw", token=other_org.token), 404, "connection_not_found")
    listed = assert_ok(api.get("/api/v3/connections", token=other_org.token))
    assert all(c["name"] != "carto_dw" for c in listed["results"])
    # By id too: the id of org 1's connection is just "not found" for org 2.
    mine = assert_ok(api.get("/api/v3/connections/carto_dw", token=admin.token))
    assert_error(api.get(f"/api/v3/connections/{mine['id']}", token=other_org.token), 404)
    assert_error(api.delete(f"/api/v3/connections/{mine['id']}", token=other_org.token), 404)
    assert_error(api.post(f"/api/v3/connections/{mine['id']}/test", token=other_org.token), 404)
    # Org 2 cannot mint tokens on org 1's connection.
    r = api.post("/api/v3/tokens", token=other_org.token,
                 json_body={"grants": [{"connection_name": "carto_dw", "source": "*"}]})
    assert_error(r, 400)


def test_other_organisation_tokens_are_invisible(api, other_org, make_token, admin):
    body = make_token(["public.e2e_places"])
    assert_error(api.get(f"/api/v3/tokens/{body['id']}", token=other_org.token), 404)
    assert_error(api.delete(f"/api/v3/tokens/{body['id']}", token=other_org.token), 404)
    assert_error(api.patch(f"/api/v3/tokens/{body['id']}", token=other_org.token, json_body={"referers": []}), 404)
    theirs = assert_ok(api.get("/api/v3/tokens", token=other_org.token))
    assert all(t["id"] != body["id"] for t in theirs["results"])
    assert_ok(api.get(f"/api/v3/tokens/{body['id']}", token=admin.token))


def test_other_organisation_users_are_invisible(api, other_org, admin):
    users = assert_ok(api.get("/api/v3/users", token=other_org.token))["results"]
    assert [u["email"] for u in users] == [other_org.email]
    assert_error(api.patch(f"/api/v3/users/{admin.id}", token=other_org.token, json_body={"role": "viewer"}), 404)
    assert_error(api.delete(f"/api/v3/users/{admin.id}", token=other_org.token), 404)
    assert assert_ok(api.get("/api/v3/me", token=admin.token))["user"]["role"] == "admin"
