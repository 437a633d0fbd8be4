"""Tokens API v3 (carto-v3-api.md §7): CRUD, the response shape, validation errors with `description`,
and who may manage tokens."""

from __future__ import annotations

import time

import pytest

from helpers import assert_error, assert_ok, jwt_claims, jwt_header, wait_until

PLACES = {"connection_name": "carto_dw", "source": "public.e2e_places"}


def create(api, admin, **body):
    return api.post("/api/v3/tokens", token=admin.token, json_body=body)


def test_create_shape(api, admin, dw):
    r = create(api, admin, grants=[PLACES], referers=["https://app.example.com"], allowed_apis=["sql"],
               expiration_date="2099-01-01T00:00:00Z")
    body = assert_ok(r, 201)
    assert r.header("Cache-Control") == "no-store"
    assert set(body) >= {"id", "token", "grants", "referers", "allowed_apis", "expiration_date", "created_at"}
    assert body["grants"] == [PLACES]
    assert body["referers"] == ["https://app.example.com"]
    assert body["allowed_apis"] == ["sql"]
    assert body["expiration_date"] == "2099-01-01T00:00:00Z"
    assert time.strptime(body["created_at"], "%Y-%m-%dT%H:%M:%SZ")
    # The token is a short HS256 JWT {"a": account, "jti": id} (§8).
    assert jwt_header(body["token"])["alg"] == "HS256"
    claims = jwt_claims(body["token"])
    assert claims["jti"] == body["id"] and "a" in claims
    assert "account_id" not in body and "created_by" not in body


def test_defaults(api, admin, dw):
    body = assert_ok(create(api, admin, grants=[PLACES]), 201)
    assert body["allowed_apis"] == ["sql", "maps"]
    assert body["referers"] == []
    assert body["expiration_date"] is None


def test_get_by_id_and_by_token(api, admin, make_token):
    made = make_token(["public.e2e_places"])
    by_id = assert_ok(api.get(f"/api/v3/tokens/{made['id']}", token=admin.token))
    by_token = assert_ok(api.get(f"/api/v3/tokens/{made['token']}", token=admin.token))
    assert by_id == by_token
    assert by_id["token"] == made["token"]
    assert by_id["grants"] == made["grants"]


def test_list(api, admin, make_token):
    made = make_token(["public.e2e_places"])
    doc = assert_ok(api.get("/api/v3/tokens", token=admin.token))
    assert doc["total"] == len(doc["results"])
    assert made["id"] in {t["id"] for t in doc["results"]}


def test_patch(api, admin, make_token, dw):
    made = make_token(["public.e2e_places"])
    r = api.patch(f"/api/v3/tokens/{made['id']}", token=admin.token,
                  json_body={"allowed_apis": ["maps"], "referers": ["https://x.example.com"],
                             "grants": [{"connection_name": "carto_dw", "source": "e2e_s.*"}]})
    body = assert_ok(r)
    assert body["allowed_apis"] == ["maps"] and body["referers"] == ["https://x.example.com"]
    assert body["grants"] == [{"connection_name": "carto_dw", "source": "e2e_s.*"}]
    assert body["token"] == made["token"], "patching keeps the token string"
    # The change applies within the 5 s the cache may hold the old grants: the token lost the sql API.
    origin = {"Origin": "https://x.example.com"}
    wait_until(lambda: api.sql("SELECT 1 FROM e2e_s.t1", made["token"], headers=origin).status == 403, 5.5, 0.2)
    assert_error(api.sql("SELECT 1 FROM e2e_s.t1", made["token"], headers=origin), 403, "api_not_allowed")
    # Partial patch keeps the rest.
    body = assert_ok(api.patch(f"/api/v3/tokens/{made['token']}", token=admin.token, json_body={"allowed_apis": ["sql"]}))
    assert body["referers"] == ["https://x.example.com"] and body["allowed_apis"] == ["sql"]
    wait_until(lambda: api.sql("SELECT a FROM e2e_s.t1", made["token"], headers=origin).status == 200, 5.5, 0.2)
    assert_error(api.sql("SELECT * FROM e2e_places", made["token"], headers=origin), 403, "source_not_granted")


def test_expiration_is_fixed_at_creation(api, admin, make_token):
    made = make_token(["public.e2e_places"])
    doc = assert_error(api.patch(f"/api/v3/tokens/{made['id']}", token=admin.token,
                                 json_body={"expiration_date": "2099-01-01T00:00:00Z"}), 400)
    assert isinstance(doc.get("description"), str)


def test_delete(api, admin, make_token):
    made = make_token(["public.e2e_places"])
    r = api.delete(f"/api/v3/tokens/{made['token']}", token=admin.token)
    assert r.status == 204 and r.body == b""
    assert_error(api.get(f"/api/v3/tokens/{made['id']}", token=admin.token), 404)
    assert_error(api.delete(f"/api/v3/tokens/{made['id']}", token=admin.token), 404)
    assert made["id"] not in {t["id"] for t in assert_ok(api.get("/api/v3/tokens", token=admin.token))["results"]}


@pytest.mark.parametrize("body, fragment", [
    ({"grants": [PLACES], "allowed_apis": ["sql", "bogus"]}, "bogus"),
    ({"grants": [PLACES], "allowed_apis": "sql"}, "allowed_apis"),
    ({"grants": [PLACES], "allowed_apis": [1]}, "allowed_apis"),
    ({"grants": [{"connection_name": "no_such_conn", "source": "t"}]}, "no_such_conn"),
    ({"grants": [{"connection_name": "carto_dw"}]}, "source"),
    ({"grants": [{"source": "t"}]}, "connection_name"),
    ({"grants": [{"connection_name": "carto_dw", "source": "  "}]}, "source"),
    ({"grants": "carto_dw"}, "grants"),
    ({"grants": [PLACES], "referers": "https://x"}, "referers"),
    ({"grants": [PLACES], "expiration_date": "2000-01-01T00:00:00Z"}, "future"),
    ({"grants": [PLACES], "expiration_date": "next tuesday"}, "expiration_date"),
])
def test_validation_errors(api, admin, body, fragment, dw):
    doc = assert_error(create(api, admin, **body), 400)
    assert isinstance(doc.get("description"), str) and doc["description"], doc
    assert fragment in doc["description"] or fragment in doc["error"], doc


def test_unknown_token_ids(api, admin):
    for ident in ("00000000-0000-0000-0000-000000000000", "not-a-uuid", "x" * 200):
        assert_error(api.get(f"/api/v3/tokens/{ident}", token=admin.token), 404)
        assert_error(api.delete(f"/api/v3/tokens/{ident}", token=admin.token), 404)


def test_session_user_manages_tokens_with_csrf(api, admin, dw):
    r = api.post("/api/v3/tokens", session=admin.session, json_body={"grants": [PLACES]})
    body = assert_ok(r, 201)
    r = api.post("/api/v3/tokens", session=admin.session, csrf=False, json_body={"grants": [PLACES]})
    assert_error(r, 403, "csrf_failed")
    assert api.delete(f"/api/v3/tokens/{body['id']}", session=admin.session).status == 204


def test_api_token_cannot_manage_tokens(api, full_token, make_token):
    made = make_token(["public.e2e_places"])
    assert_error(api.get("/api/v3/tokens", token=full_token), 403, "user_token_required")
    assert_error(api.get(f"/api/v3/tokens/{made['id']}", token=full_token), 403, "user_token_required")
    assert_error(api.delete(f"/api/v3/tokens/{made['id']}", token=made["token"]), 403, "user_token_required")
    assert_error(api.patch(f"/api/v3/tokens/{made['id']}", token=full_token, json_body={"referers": []}),
                 403, "user_token_required")
