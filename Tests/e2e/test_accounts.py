"""Accounts (reliability.md A6–A10; carto-v3-api.md §8): login/logout and the session cookie, CSRF,
enumeration resistance, invitations and roles, password policy, OAuth client_credentials.

Logins are rate limited by nginx per IP (10/min, burst 20): this module signs in only a handful of times."""

from __future__ import annotations

import base64
import re
import urllib.parse

import pytest

from helpers import (SESSION_COOKIE, Session, assert_error, assert_ok, b64url, jwt_claims, login, mint_jwt,
                     oauth_token)

PASSWORD = "invited-Password-4821"


def cookie_attributes(set_cookie: str) -> tuple[str, dict[str, str]]:
    parts = [p.strip() for p in set_cookie.split(";")]
    name, _, value = parts[0].partition("=")
    assert name == SESSION_COOKIE
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.lower()] = v
    return value, attrs


def test_login_sets_a_host_only_secure_cookie(api, stack):
    r = api.post("/api/v3/auth/login", json_body={"email": stack.admin_email, "password": stack.admin_password})
    doc = assert_ok(r)
    assert r.header("Cache-Control") == "no-store"
    assert set(doc) == {"user", "csrf_token"}
    assert doc["user"]["email"] == stack.admin_email and doc["user"]["role"] == "admin"
    assert "password_hash" not in doc["user"] and "password" not in r.text.lower()
    value, attrs = cookie_attributes(r.header("Set-Cookie"))
    assert len(value) >= 22, "session ids carry at least 128 bits"
    assert attrs["path"] == "/"
    assert "secure" in attrs and "httponly" in attrs
    assert attrs["samesite"].lower() in ("lax", "strict")
    assert "domain" not in attrs, "__Host- cookies must not set Domain"
    assert int(attrs["max-age"]) > 0
    assert len(doc["csrf_token"]) >= 16

    # A new session id at every login (A6).
    again = login(api, stack.admin_email, stack.admin_password)
    assert again.cookie != value and again.csrf != doc["csrf_token"]


def test_wrong_password_and_unknown_email_look_the_same(api, stack):
    known = api.post("/api/v3/auth/login", json_body={"email": stack.admin_email, "password": "wrong-Password-123"})
    unknown = api.post("/api/v3/auth/login", json_body={"email": "nobody-e2e@example.com",
                                                        "password": "wrong-Password-123"})
    for r in (known, unknown):
        assert_error(r, 401, "invalid_credentials")
        assert r.header("Set-Cookie") is None
    strip = lambda d: {k: v for k, v in d.items() if k != "request_id"}  # noqa: E731
    assert strip(known.json()) == strip(unknown.json())
    # Both paths hash a password (no timing shortcut for unknown emails): same order of magnitude.
    assert unknown.elapsed > known.elapsed / 4, (known.elapsed, unknown.elapsed)


def test_login_validation(api):
    assert_error(api.post("/api/v3/auth/login", json_body={"email": "a@example.com"}), 400, "missing_parameter")
    assert_error(api.post("/api/v3/auth/login", data="{oops", headers={"Content-Type": "application/json"}),
                 400, "invalid_json")


def test_session_cookie_on_me_and_sql(api, admin, dw):
    me = assert_ok(api.get("/api/v3/me", session=admin.session))
    assert me["user"]["email"] == admin.email
    assert me["csrf_token"] == admin.session.csrf
    assert me["account"]["id"]
    doc = assert_ok(api.sql("SELECT count(*) AS n FROM e2e_places", session=admin.session))
    assert doc["rows"] == [{"n": 4}]
    doc = assert_ok(api.sql("SELECT 1 AS a", session=admin.session, method="POST"))
    assert doc["rows"] == [{"a": 1}]


def test_csrf_required_for_cookie_state_changes(api, admin):
    body = {"grants": [{"connection_name": "carto_dw", "source": "public.e2e_places"}]}
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
        r = api.post("/api/v3/tokens", session=admin.session, csrf=False, json_body=body, headers=headers)
        assert_error(r, 403, "csrf_failed")
    r = api.post("/api/v3/sql/carto_dw/query", session=admin.session, csrf=False, json_body={"q": "SELECT 1"})
    assert_error(r, 403, "csrf_failed")
    assert_error(api.post("/api/v3/oauth-clients", session=admin.session, csrf=False, json_body={"name": "x"}),
                 403, "csrf_failed")
    # A text/plain "simple" cross-site form POST is refused before anything happens (A7).
    r = api.post("/api/v3/tokens", session=admin.session, data="grants=x", headers={"Content-Type": "text/plain"})
    assert r.status in (403, 415), r
    assert_error(r, r.status)


def test_logout_invalidates_the_session(api, stack):
    s = login(api, stack.admin_email, stack.admin_password)
    assert_ok(api.get("/api/v3/me", session=s))
    # Logout is a state change: the CSRF token is needed.
    assert_error(api.post("/api/v3/auth/logout", session=s, csrf=False), 403, "csrf_failed")
    r = api.post("/api/v3/auth/logout", session=s)
    assert_ok(r)
    value, attrs = cookie_attributes(r.header("Set-Cookie"))
    assert value == "" and attrs["max-age"] == "0"
    assert_error(api.get("/api/v3/me", session=s), 401)
    assert_error(api.sql("SELECT 1", session=s), 401)
    assert_error(api.get("/api/v3/tokens", session=s), 401)


def test_forged_session_cookie(api):
    fake = Session(cookie="A" * 43, csrf="x", user={})
    assert_error(api.get("/api/v3/me", session=fake), 401)


def test_signup_is_by_invitation(api):
    doc = assert_error(api.post("/api/v3/auth/signup", json_body={"email": "walkin@example.com",
                                                                 "password": "walk-in-Password-1"}),
                       403, "signup_closed")
    assert "invitation" in doc["error"].lower()


class TestInvitationsAndRoles:
    """One invited user, walked through the roles (shared state, run in order)."""

    email = "invited-e2e@example.com"
    state: dict = {}

    def test_only_admins_invite(self, api, admin, full_token):
        assert_error(api.post("/api/v3/invitations", token=full_token, json_body={"email": "x@example.com",
                                                                                  "role": "viewer"}),
                     403, "user_token_required")
        assert_error(api.post("/api/v3/invitations", token=admin.token, json_body={"email": "nope", "role": "viewer"}),
                     400, "invalid_email")
        assert_error(api.post("/api/v3/invitations", token=admin.token,
                              json_body={"email": "x@example.com", "role": "owner"}), 400, "invalid_role")

    def test_invite(self, api, admin):
        r = api.post("/api/v3/invitations", token=admin.token, json_body={"email": self.email, "role": "viewer"})
        doc = assert_ok(r, 201)
        assert set(doc) >= {"id", "token", "link"}
        assert doc["link"].startswith(api.stack.base_url) and urllib.parse.quote(doc["token"]) in doc["link"]
        self.state["invitation"] = doc
        listed = assert_ok(api.get("/api/v3/invitations", token=admin.token))["results"]
        mine = [i for i in listed if i["id"] == doc["id"]]
        assert mine and mine[0]["accepted"] is False and "token" not in mine[0]

    def test_accept_with_policy(self, api):
        token = self.state["invitation"]["token"]
        for bad in ("short-pw", "x" * 129, "password1234"):
            assert_error(api.post("/api/v3/auth/invitations/accept", json_body={"token": token, "password": bad}),
                         400, "weak_password")
        assert_error(api.post("/api/v3/auth/invitations/accept",
                              json_body={"token": "not-a-real-invitation", "password": PASSWORD}),
                     400, "invalid_invitation")
        doc = assert_ok(api.post("/api/v3/auth/invitations/accept", json_body={"token": token, "password": PASSWORD}),
                        201)
        assert doc["user"]["email"] == self.email and doc["user"]["role"] == "viewer"
        self.state["user_id"] = doc["user"]["id"]
        # One use only.
        assert_error(api.post("/api/v3/auth/invitations/accept", json_body={"token": token, "password": PASSWORD}),
                     400, "invalid_invitation")

    def test_viewer_logs_in_with_role(self, api):
        s = login(api, self.email, PASSWORD)
        assert s.user["role"] == "viewer" and s.user["id"] == self.state["user_id"]
        self.state["session"] = s

    def test_viewer_is_read_only(self, api, dw):
        s = self.state["session"]
        grants = {"grants": [{"connection_name": "carto_dw", "source": "public.e2e_places"}]}
        assert_error(api.post("/api/v3/tokens", session=s, json_body=grants), 403, "role_forbidden")
        assert_error(api.post("/api/v3/connections", session=s, json_body={"name": "v", "host": "h", "database": "d",
                                                                          "user": "u"}), 403, "role_forbidden")
        assert_error(api.post("/api/v3/oauth-clients", session=s, json_body={"name": "v"}), 403, "role_forbidden")
        assert_error(api.get("/api/v3/users", session=s), 403, "role_forbidden")
        assert_error(api.post("/api/v3/invitations", session=s, json_body={"email": "y@example.com", "role": "admin"}),
                     403, "role_forbidden")
        assert_error(api.patch(f"/api/v3/users/{self.state['user_id']}", session=s, json_body={"role": "admin"}),
                     403, "role_forbidden")
        # Reading is fine.
        assert_ok(api.get("/api/v3/connections", session=s))
        assert_ok(api.get("/api/v3/tokens", session=s))
        assert assert_ok(api.get("/api/v3/me", session=s))["user"]["role"] == "viewer"

    def test_admin_lists_and_promotes(self, api, admin):
        users = assert_ok(api.get("/api/v3/users", token=admin.token))["results"]
        assert {u["email"] for u in users} >= {admin.email, self.email}
        assert all("password_hash" not in u for u in users)
        assert_error(api.patch(f"/api/v3/users/{self.state['user_id']}", token=admin.token,
                               json_body={"role": "superuser"}), 400, "invalid_role")
        doc = assert_ok(api.patch(f"/api/v3/users/{self.state['user_id']}", token=admin.token,
                                  json_body={"role": "editor"}))
        assert doc["role"] == "editor"
        # The live session sees the new role at once.
        s = self.state["session"]
        r = api.post("/api/v3/tokens", session=s,
                     json_body={"grants": [{"connection_name": "carto_dw", "source": "public.e2e_places"}]})
        assert_ok(r, 201)
        assert_error(api.get("/api/v3/users", session=s), 403, "role_forbidden")

    def test_last_admin_is_protected(self, api, admin):
        assert_error(api.patch(f"/api/v3/users/{admin.id}", token=admin.token, json_body={"role": "viewer"}),
                     409, "last_admin")
        assert_error(api.delete(f"/api/v3/users/{admin.id}", token=admin.token), 409, "last_admin")

    def test_deleted_user_is_signed_out(self, api, admin):
        assert api.delete(f"/api/v3/users/{self.state['user_id']}", token=admin.token).status == 204
        assert_error(api.get("/api/v3/me", session=self.state["session"]), 401)
        assert_error(api.delete(f"/api/v3/users/{self.state['user_id']}", token=admin.token), 404)


def test_signup_with_invitation(api, admin):
    inv = assert_ok(api.post("/api/v3/invitations", token=admin.token,
                             json_body={"email": "signup-e2e@example.com", "role": "editor"}), 201)
    doc = assert_ok(api.post("/api/v3/auth/signup", json_body={"invitation": inv["token"], "password": PASSWORD}), 201)
    assert doc["user"]["role"] == "editor" and doc["user"]["email"] == "signup-e2e@example.com"
    assert api.delete(f"/api/v3/users/{doc['user']['id']}", token=admin.token).status == 204


class TestOAuth:
    def test_client_credentials_round_trip(self, api, admin, dw):
        token, client_id, secret = oauth_token(api, admin.session, "round-trip")
        claims = jwt_claims(token)
        assert claims["aud"] == "carto-cloud-native-api"
        assert claims["sub"] == admin.id and claims["azp"] == client_id
        assert claims["http://app.carto.com/acting_as"] == admin.id
        assert claims["exp"] > claims["iat"]
        doc = assert_ok(api.sql("SELECT count(*) AS n FROM e2e_places", token))
        assert doc["rows"] == [{"n": 4}]
        assert assert_ok(api.get("/api/v3/me", token=token))["user"]["id"] == admin.id
        clients = assert_ok(api.get("/api/v3/oauth-clients", token=token))["results"]
        assert client_id in {c["client_id"] for c in clients}
        assert secret not in str(clients)

    def test_token_response_shape(self, api, admin):
        r = api.post("/api/v3/oauth-clients", token=admin.token, json_body={"name": "shape"})
        client = assert_ok(r, 201)
        form = {"grant_type": "client_credentials", "client_id": client["client_id"],
                "client_secret": client["client_secret"], "audience": "carto-cloud-native-api"}
        r = api.post("/api/oauth/token", data=urllib.parse.urlencode(form),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        doc = assert_ok(r)
        assert set(doc) >= {"access_token", "token_type", "expires_in", "scope"}
        assert doc["token_type"] == "Bearer" and doc["expires_in"] > 0
        assert r.header("Cache-Control") == "no-store"
        # HTTP Basic client authentication works too.
        basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
        r = api.post("/api/oauth/token", data="grant_type=client_credentials",
                     headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"})
        assert assert_ok(r)["token_type"] == "Bearer"

        bad = [({**form, "client_secret": "wrong"}, 401, "invalid_client"),
               ({**form, "client_id": "nope"}, 401, "invalid_client"),
               ({**form, "grant_type": "password"}, 400, "unsupported_grant_type"),
               ({**form, "audience": "https://other"}, 400, "invalid_request")]
        for body, status, code in bad:
            r = api.post("/api/oauth/token", data=urllib.parse.urlencode(body),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert_error(r, status, code)
            assert client["client_secret"] not in r.text

    def test_tampered_tokens(self, api, admin):
        header, payload, signature = admin.token.split(".")
        none = mint_jwt(None, jwt_claims(admin.token), {"alg": "none", "typ": "JWT"})
        assert_error(api.sql("SELECT 1", none), 401, "invalid_token")
        assert_error(api.get("/api/v3/me", token=none), 401, "invalid_token")
        # Elevating the claims without re-signing.
        claims = {**jwt_claims(admin.token), "sub": "00000000-0000-0000-0000-000000000000"}
        forged = f"{header}.{b64url(__import__('json').dumps(claims).encode())}.{signature}"
        assert_error(api.get("/api/v3/me", token=forged), 401, "invalid_token")
        assert re.fullmatch(r"[A-Za-z0-9_-]+", signature)


def test_login_throttling(limits_stack):
    """A8 / issue 11 case 10, on the extra stack (it burns its login budget): failures delay the
    (email, client address) pair that made them, with growing waits and a JSON 429 + Retry-After,
    never a lockout: failures from another address leave the owner able to sign in.
    nginx's per-IP limit answers JSON 429 too."""
    from helpers import Api, metadata

    lapi = Api(limits_stack)
    email = limits_stack.admin_email
    login_path = "/api/v3/auth/login"
    # An attacker elsewhere fails 50 times for this email: the owner still signs in from here.
    metadata(limits_stack, "INSERT INTO login_failures (email_key, ip) "
                           f"SELECT lower('{email}'), '203.0.113.9' FROM generate_series(1, 50)")
    assert_ok(lapi.post(login_path, json_body={"email": email, "password": limits_stack.admin_password}))
    # From here: one real failure, then (white-box, so no test waits out real delays) eleven more.
    r = lapi.post(login_path, json_body={"email": email, "password": "wrong-Password-0000"})
    assert_error(r, 401, "invalid_credentials")
    ip = metadata(limits_stack, f"SELECT ip FROM login_failures WHERE email_key = lower('{email}') "
                                "AND ip <> '203.0.113.9' LIMIT 1")
    assert ip
    metadata(limits_stack, "INSERT INTO login_failures (email_key, ip) "
                           f"SELECT lower('{email}'), '{ip}' FROM generate_series(1, 11)")
    r = lapi.post(login_path, json_body={"email": email, "password": limits_stack.admin_password})
    body = assert_error(r, 429, "login_throttled")
    assert r.header("Set-Cookie") is None
    assert int(r.header("Retry-After")) >= 1 and body["retry_after"] == int(r.header("Retry-After"))
    # The wait does not grow while refused attempts keep coming (they are not failures).
    failures = metadata(limits_stack, f"SELECT count(*) FROM login_failures WHERE email_key = lower('{email}') AND ip = '{ip}'")
    lapi.post(login_path, json_body={"email": email, "password": "wrong-Password-0001"})
    assert metadata(limits_stack, f"SELECT count(*) FROM login_failures WHERE email_key = lower('{email}') AND ip = '{ip}'") == failures
    # Once the delay has passed (moved into the past here), the right password works and clears the pair.
    metadata(limits_stack, f"UPDATE login_failures SET at = at - interval '59 minutes' WHERE email_key = lower('{email}') AND ip = '{ip}'")
    assert_ok(lapi.post(login_path, json_body={"email": email, "password": limits_stack.admin_password}))
    assert metadata(limits_stack, f"SELECT count(*) FROM login_failures WHERE email_key = lower('{email}') AND ip = '{ip}'") == "0"
    # nginx's per-IP limit (10/min, burst 20) answers JSON 429 as well.
    for i in range(25):
        r = lapi.post(login_path, json_body={"email": f"nobody-{i}@example.com", "password": "wrong-Password-0002"})
        if r.status == 429:
            break
    assert r.status == 429
    assert_error(r, 429, from_app=r.json().get("code") == "login_throttled")
    assert limits_stack.check_alive() == []
