"""Workspace maps (/api/v3/workspace/maps) and fetchMap's public endpoint (/api/v3/maps/public/{id}):
CRUD with role enforcement, document validation, organisation isolation, and the map's own API token
whose grants follow its datasets."""

from __future__ import annotations

import os

import pytest

from helpers import assert_error, assert_ok, login, unique, wait_until

# Revocation reaches every cache (process memo 1 s, Redis 3 s, the http-cache via purge jobs) within seconds.
REVOCATION_SECONDS = 15

MAPS = "/api/v3/workspace/maps"
PASSWORD = "maps-Password-7713"


def dataset(source="public.e2e_places", **over):
    d = {"id": "d1", "type": "table", "source": source, "connectionName": "carto_dw", "geoColumn": "geom",
         "columns": ["name", "population"]}
    d.update(over)
    return d


def kepler(layers=None):
    return {"version": "v1", "config": {
        "filters": {}, "mapState": {"latitude": 0, "longitude": 0, "zoom": 2},
        "mapStyle": {"styleType": "positron", "visibleLayerGroups": {}}, "popupSettings": {}, "legendSettings": {},
        "visState": {"layers": layers if layers is not None else [
            {"id": "l1", "type": "tileset", "config": {"dataId": "d1", "visConfig": {}, "textLabel": [], "columns": {}},
             "visualChannels": {}}], "layerBlending": "normal", "interactionConfig": {}},
        "customBaseMaps": {}}}


def invited(api, admin, role):
    email = f"maps-{role}-{os.urandom(3).hex()}@example.com"
    inv = assert_ok(api.post("/api/v3/invitations", token=admin.token, json_body={"email": email, "role": role}), 201)
    assert_ok(api.post("/api/v3/auth/invitations/accept", json_body={"token": inv["token"], "password": PASSWORD}), 201)
    return login(api, email, PASSWORD)


@pytest.fixture(scope="module")
def viewer(api, admin):
    return invited(api, admin, "viewer")


@pytest.fixture(scope="module")
def editor(api, admin):
    return invited(api, admin, "editor")


def create(api, admin, **body):
    body.setdefault("title", unique("map"))
    return assert_ok(api.post(MAPS, token=admin.token, json_body=body), 201)


def test_crud_and_shapes(api, admin, dw):
    m = create(api, admin, title="  Places  ", description="All places", keplerMapConfig=kepler(), datasets=[dataset()])
    assert m["title"] == "Places" and m["description"] == "All places" and m["privacy"] == "private"
    assert m["publicUrl"] == f"/api/v3/maps/public/{m['id']}"
    assert m["owner"]["email"] == admin.email and m["owner"]["id"]
    assert m["keplerMapConfig"]["version"] == "v1"
    ds = m["datasets"][0]
    assert ds["source"] == "public.e2e_places" and ds["format"] == "tilejson" and ds["aggregationExp"] is None
    assert m["createdAt"].endswith("Z") and m["updatedAt"] >= m["createdAt"]

    # A map with no documents gets a valid empty config.
    empty = create(api, admin)
    assert empty["keplerMapConfig"]["config"]["visState"]["layers"] == [] and empty["datasets"] == []

    assert assert_ok(api.get(f"{MAPS}/{m['id']}", token=admin.token)) == m
    r = api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"title": "Renamed", "description": ""})
    renamed = assert_ok(r)
    assert renamed["title"] == "Renamed" and renamed["description"] == "" and renamed["updatedAt"] > m["updatedAt"]
    assert renamed["datasets"] == m["datasets"]

    listed = assert_ok(api.get(MAPS, token=admin.token))["data"]
    ids = [x["id"] for x in listed]
    assert ids.index(m["id"]) < ids.index(empty["id"])  # newest updated first
    summary = next(x for x in listed if x["id"] == m["id"])
    assert set(summary) == {"id", "title", "description", "privacy", "createdAt", "updatedAt", "owner"}

    copy = assert_ok(api.post(f"{MAPS}/{m['id']}/duplicate", token=admin.token), 201)
    assert copy["id"] != m["id"] and copy["title"] == "Copy of Renamed" and copy["privacy"] == "private"
    assert copy["keplerMapConfig"] == m["keplerMapConfig"] and copy["datasets"] == m["datasets"]

    assert api.delete(f"{MAPS}/{m['id']}", token=admin.token).status == 204
    assert_error(api.get(f"{MAPS}/{m['id']}", token=admin.token), 404, "map_not_found")
    assert_error(api.delete(f"{MAPS}/{m['id']}", token=admin.token), 404, "map_not_found")
    assert_error(api.get(f"{MAPS}/nope", token=admin.token), 404, "map_not_found")


@pytest.mark.parametrize("body, code, words", [
    ({}, "invalid_map", "title"),
    ({"title": "  "}, "invalid_map", "title"),
    ({"title": "t", "keplerMapConfig": {"version": "v2", "config": {}}}, "invalid_map", "version"),
    ({"title": "t", "keplerMapConfig": "nope"}, "invalid_map", "keplerMapConfig"),
    ({"title": "t", "keplerMapConfig": {"version": "v1", "config": {"mapState": {}, "mapStyle": {}}}}, "invalid_map", "visState"),
    ({"title": "t", "keplerMapConfig": kepler([{"id": "l1"}])}, "invalid_map", "visualChannels"),
    ({"title": "t", "datasets": {"a": 1}}, "invalid_map", "array"),
    ({"title": "t", "datasets": [dataset(type="raster")]}, "invalid_map", "type"),
    ({"title": "t", "datasets": [dataset(connectionName="no_such_conn")]}, "connection_not_found", "no_such_conn"),
    ({"title": "t", "datasets": [dataset(source=" ")]}, "invalid_map", "source"),
    ({"title": "t", "datasets": [dataset(geoColumn=3)]}, "invalid_map", "geoColumn"),
    ({"title": "t", "datasets": [dataset(), dataset()]}, "invalid_map", "twice"),
    ({"title": "t", "datasets": [dataset(source="SELECT * FROM public.e2e_secret")]}, "invalid_map", "query"),
])
def test_validation(api, admin, dw, body, code, words):
    doc = assert_error(api.post(MAPS, token=admin.token, json_body=body), 400, code)
    assert words.lower() in doc["error"].lower(), doc


def test_patch_validation_and_privacy(api, admin, dw):
    m = create(api, admin)
    assert_error(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"privacy": "secret"}), 400, "invalid_map")
    assert_error(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"title": ""}), 400, "invalid_map")
    assert_error(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"datasets": [dataset(type="x")]}), 400)
    assert assert_ok(api.get(f"{MAPS}/{m['id']}", token=admin.token)) == m  # nothing half-applied
    assert assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"privacy": "public"}))["privacy"] == "public"


def test_viewer_reads_only_and_editor_writes(api, admin, viewer, editor, dw):
    # Organisation-visible (a new map is private: owner and admins only, see test_isolation_roles).
    m = create(api, admin, privacy="organization")
    assert any(x["id"] == m["id"] for x in assert_ok(api.get(MAPS, session=viewer))["data"])
    assert assert_ok(api.get(f"{MAPS}/{m['id']}", session=viewer))["id"] == m["id"]
    for method, path in [("POST", MAPS), ("PATCH", f"{MAPS}/{m['id']}"), ("DELETE", f"{MAPS}/{m['id']}"),
                         ("POST", f"{MAPS}/{m['id']}/duplicate")]:
        assert_error(api.request(method, path, session=viewer, json_body={"title": "x"}), 403, "role_forbidden")
    # Cookie-authenticated writes need the CSRF header.
    assert_error(api.post(MAPS, session=editor, csrf=False, json_body={"title": "x"}), 403, "csrf_failed")
    mine = assert_ok(api.post(MAPS, session=editor, json_body={"title": "Editor's"}), 201)
    assert mine["owner"]["email"] == editor.user["email"]
    assert assert_ok(api.patch(f"{MAPS}/{m['id']}", session=editor, json_body={"title": "By editor"}))["title"] == "By editor"
    assert api.delete(f"{MAPS}/{mine['id']}", session=editor).status == 204


def test_api_tokens_and_anonymous_cannot_use_workspace_maps(api, full_token):
    assert_error(api.get(MAPS), 401)
    assert_error(api.get(MAPS, token=full_token), 403, "user_token_required")


def test_other_organisation_sees_nothing(api, admin, other_org, dw):
    m = create(api, admin)
    assert all(x["id"] != m["id"] for x in assert_ok(api.get(MAPS, token=other_org.token))["data"])
    assert_error(api.get(f"{MAPS}/{m['id']}", token=other_org.token), 404, "map_not_found")
    assert_error(api.patch(f"{MAPS}/{m['id']}", token=other_org.token, json_body={"title": "x"}), 404)
    assert_error(api.delete(f"{MAPS}/{m['id']}", token=other_org.token), 404)
    # Another organisation's connection names are unknown here.
    assert_error(api.post(MAPS, token=other_org.token, json_body={"title": "t", "datasets": [dataset()]}), 400,
                 "connection_not_found")


# ---- the public endpoint -----------------------------------------------------------------------

PUBLIC = "/api/v3/maps/public/{}"
HANDSHAKE = "/api/v3/maps/carto_dw/table"
CLIENT = {"v": "3.4", "client": "deck-gl-carto", "spatialDataColumn": "geom", "spatialDataType": "geo"}


def source_status(api, token, name):
    return api.get(HANDSHAKE, params={**CLIENT, "name": name, "tag-mapId": "m"}, token=token).status


def test_private_map_is_only_for_its_organisation(api, admin, other_org, full_token, dw):
    m = create(api, admin, keplerMapConfig=kepler(), datasets=[dataset()])
    path = PUBLIC.format(m["id"])
    assert_error(api.get(path), 404, "map_not_found")
    assert_error(api.get(path, token=other_org.token), 404, "map_not_found")
    assert_error(api.get(path, token="not-a-token"), 404, "map_not_found")
    r = api.get(path, token=admin.token)
    doc = assert_ok(r)
    assert r.header("Cache-Control") == "private, no-store"
    assert doc["id"] == m["id"] and doc["keplerMapConfig"] == m["keplerMapConfig"] and doc["token"]
    # An API access token of the organisation (maps allowed) may read it too.
    assert assert_ok(api.get(path, token=full_token))["id"] == m["id"]
    assert_error(api.get(PUBLIC.format("no-such-map")), 404, "map_not_found")


def test_public_map_and_its_token(api, admin, dw):
    m = create(api, admin, keplerMapConfig=kepler(), datasets=[dataset()])
    assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"privacy": "public"}))
    r = api.get(PUBLIC.format(m["id"]), params={"v": "3.4", "client": "deck-gl-carto"})
    doc = assert_ok(r)
    assert r.header("Cache-Control").startswith("public, max-age=")
    # Exactly the fields fetchMap reads (contract §6 / §14(c)).
    for key in ("id", "title", "description", "createdAt", "updatedAt", "token", "keplerMapConfig", "datasets"):
        assert key in doc, key
    config = doc["keplerMapConfig"]["config"]
    assert doc["keplerMapConfig"]["version"] == "v1"
    assert all(isinstance(config[k], dict) for k in ("filters", "mapState", "mapStyle", "visState"))
    assert all(isinstance(layer["visualChannels"], dict) for layer in config["visState"]["layers"])
    assert doc["datasets"][0]["connectionName"] == "carto_dw" and doc["datasets"][0]["geoColumn"] == "geom"

    token = doc["token"]
    assert source_status(api, token, "public.e2e_places") == 200
    assert source_status(api, token, "public.e2e_secret") == 403
    assert source_status(api, token, "public.world_countries") == 200  # the offline basemap under every map
    assert api.sql("SELECT * FROM public.e2e_secret", token).status == 403
    # The map's token stays out of the Tokens API listing (it belongs to the map).
    listed = assert_ok(api.get("/api/v3/tokens", token=admin.token))["results"]
    assert all(t["token"] != token for t in listed)
    # Title edits keep the token; new datasets replace it, and the old one stops working.
    assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"title": "Still public"}))
    assert assert_ok(api.get(PUBLIC.format(m["id"])))["token"] == token
    query = "SELECT cartodb_id, name, geom FROM public.e2e_places WHERE population > 150"
    assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token,
                        json_body={"datasets": [dataset(source=query, type="query")]}))
    new_token = assert_ok(api.get(PUBLIC.format(m["id"])))["token"]
    assert new_token != token
    assert api.get("/api/v3/maps/carto_dw/query", params={**CLIENT, "q": query}, token=new_token).status == 200
    assert source_status(api, new_token, "public.e2e_places") == 403
    wait_until(lambda: source_status(api, token, "public.e2e_places") == 401, REVOCATION_SECONDS)

    # Private again: anonymous callers get 404; deleting revokes the token.
    assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"privacy": "private"}))
    assert_error(api.get(PUBLIC.format(m["id"])), 404)
    assert api.delete(f"{MAPS}/{m['id']}", token=admin.token).status == 204
    wait_until(lambda: api.get("/api/v3/maps/carto_dw/query", params={**CLIENT, "q": query}, token=new_token).status == 401,
               REVOCATION_SECONDS)


def test_a_deleted_map_token_is_replaced(api, admin, dw):
    m = create(api, admin, keplerMapConfig=kepler(), datasets=[dataset()])
    assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"privacy": "public"}))
    token = assert_ok(api.get(PUBLIC.format(m["id"])))["token"]
    assert api.delete(f"/api/v3/tokens/{token}", token=admin.token).status == 204
    fresh = assert_ok(api.get(PUBLIC.format(m["id"])))["token"]
    assert fresh != token and assert_ok(api.get(PUBLIC.format(m["id"])))["token"] == fresh
    assert source_status(api, fresh, "public.e2e_places") == 200


def test_config_is_anonymous(api):
    r = api.get("/api/v3/workspace/config")
    doc = assert_ok(r)
    assert doc["basemap"] == {"type": "tessera", "connection": "carto_dw", "table": "world_countries"}
    assert doc["signup"] == "invitation" and doc["smtp"] is False
