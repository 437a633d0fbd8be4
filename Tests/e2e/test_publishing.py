"""Publishing (issue 14): a map's draft and published versions as `/api/v3/maps/public/{id}` (what fetchMap
reads) serves them, never-published maps serving their current state, a publish refused when a source
vanished, and password-protected public maps: 401 until a grant is shown, grants only for the right
password, guesses throttled per address and map, the map token only after the password."""

from __future__ import annotations


from helpers import assert_error, assert_ok, metadata, unique
from test_workspace_maps import CLIENT, MAPS, PUBLIC, dataset, kepler, source_status

MAP_PASSWORD = "open-sesame-42"


def public_map(api, admin, **body):
    body.setdefault("title", unique("pub"))
    body.setdefault("keplerMapConfig", kepler())
    body.setdefault("datasets", [dataset()])
    m = assert_ok(api.post(MAPS, token=admin.token, json_body=body), 201)
    return assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"privacy": "public"}))


def publish(api, admin, m):
    return api.post(f"{MAPS}/{m['id']}/publish", token=admin.token, json_body={})


def zoomed(zoom):
    k = kepler()
    k["config"]["mapState"]["zoom"] = zoom
    return k


def access(api, m, password):
    return api.post(f"/api/v3/maps/public/{m['id']}/access", json_body={"password": password})


def test_never_published_map_serves_its_current_state(api, admin, dw):
    m = public_map(api, admin, title="Before publishing existed")
    assert m["publishedAt"] is None and m["hasUnpublishedChanges"] is False and m["passwordProtected"] is False
    assert assert_ok(api.get(PUBLIC.format(m["id"])))["title"] == "Before publishing existed"
    # Every edit of a never-published map is live, as before this change (API clients that never publish).
    assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"title": "Edited", "keplerMapConfig": zoomed(7)}))
    doc = assert_ok(api.get(PUBLIC.format(m["id"]), params={"v": "3.4", "client": "deck-gl-carto"}))
    assert doc["title"] == "Edited" and doc["keplerMapConfig"]["config"]["mapState"]["zoom"] == 7
    assert source_status(api, doc["token"], "public.e2e_places") == 200


def test_draft_and_published_versions(api, admin, dw):
    m = public_map(api, admin, title="Version one", keplerMapConfig=zoomed(3))
    published = assert_ok(publish(api, admin, m))
    assert published["publishedAt"] and published["hasUnpublishedChanges"] is False
    token = assert_ok(api.get(PUBLIC.format(m["id"])))["token"]

    # Builder edits change the draft only: the public document keeps the published title, config and datasets.
    query = "SELECT cartodb_id, name, geom FROM public.e2e_places WHERE population > 150"
    draft = assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={
        "title": "Version two", "keplerMapConfig": zoomed(9), "datasets": [dataset(source=query, type="query")]}))
    assert draft["hasUnpublishedChanges"] is True and draft["title"] == "Version two"
    doc = assert_ok(api.get(PUBLIC.format(m["id"])))
    assert doc["title"] == "Version one" and doc["keplerMapConfig"]["config"]["mapState"]["zoom"] == 3
    assert doc["datasets"][0]["source"] == "public.e2e_places"
    # The token is the published version's: it still reads the published table, not the draft's query.
    assert doc["token"] == token and source_status(api, token, "public.e2e_places") == 200
    assert api.get("/api/v3/maps/carto_dw/query", params={**CLIENT, "q": query}, token=token).status == 403

    # Publish: the public link now serves version two, with a token for its sources.
    again = assert_ok(publish(api, admin, m))
    assert again["hasUnpublishedChanges"] is False and again["publishedAt"] >= published["publishedAt"]
    doc = assert_ok(api.get(PUBLIC.format(m["id"])))
    assert doc["title"] == "Version two" and doc["keplerMapConfig"]["config"]["mapState"]["zoom"] == 9
    assert doc["datasets"][0]["source"] == query and doc["token"] != token
    assert api.get("/api/v3/maps/carto_dw/query", params={**CLIENT, "q": query}, token=doc["token"]).status == 200

    # Editing back to exactly the published content is "no unpublished changes" again.
    back = assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"title": "Changed"}))
    assert back["hasUnpublishedChanges"] is True
    same = assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"title": "Version two"}))
    assert same["hasUnpublishedChanges"] is False


def test_only_the_organisation_publishes(api, admin, dw, other_org):
    m = public_map(api, admin)
    assert_error(publish(api, other_org, m), 404, "map_not_found")
    assert_error(api.post(f"{MAPS}/{m['id']}/publish", json_body={}), 401)


def test_publish_with_a_vanished_source_keeps_the_published_version(api, admin, dw):
    table = f"public.e2e_vanish_{unique('t').replace('-', '_').lower()}"
    dw.sql(f"CREATE TABLE {table} (cartodb_id int, geom geometry(Point, 4326)); "
           f"INSERT INTO {table} VALUES (1, ST_SetSRID(ST_MakePoint(1, 1), 4326));")
    m = public_map(api, admin, title="Vanishing", datasets=[dataset(source=table)])
    assert_ok(publish(api, admin, m))
    before = assert_ok(api.get(PUBLIC.format(m["id"])))
    assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"title": "Vanishing, edited"}))

    dw.sql(f"DROP TABLE {table}")
    body = assert_error(publish(api, admin, m), 409, "map_source_missing")
    assert table.split(".")[1] in body["error"] and "before publishing" in body["error"]
    after = assert_ok(api.get(PUBLIC.format(m["id"])))
    assert after["title"] == "Vanishing" and after["datasets"] == before["datasets"] and after["token"] == before["token"]
    assert assert_ok(api.get(f"{MAPS}/{m['id']}", token=admin.token))["hasUnpublishedChanges"] is True

    # A query whose table vanished is refused the same way.
    assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={
        "datasets": [dataset(source=f"SELECT * FROM {table}", type="query")]}))
    assert_error(publish(api, admin, m), 409, "map_source_missing")
    assert assert_ok(api.get(PUBLIC.format(m["id"])))["title"] == "Vanishing"


def test_password_protected_map(api, admin, dw):
    m = public_map(api, admin)
    assert_error(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"password": "short"}), 400, "weak_password")
    # Without a password there is no password step.
    assert_error(access(api, m, MAP_PASSWORD), 404, "map_not_found")
    updated = assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"password": MAP_PASSWORD}))
    assert updated["passwordProtected"] is True and not {"password", "passwordHash", "password_hash"} & updated.keys()

    # fetchMap's request: 401 with a clear code, and no token or map document in the answer.
    r = api.get(PUBLIC.format(m["id"]), params={"v": "3.4", "client": "deck-gl-carto"})
    body = assert_error(r, 401, "map_password_required")
    assert "token" not in body and "keplerMapConfig" not in body
    assert_error(api.get(PUBLIC.format(m["id"]), headers={"X-Map-Grant": "forged.grant.value"}), 401, "map_password_required")

    assert_error(access(api, m, "not-the-password"), 401, "map_password_invalid")
    assert_error(api.post(f"/api/v3/maps/public/{m['id']}/access", json_body={}), 400, "missing_parameter")
    r = access(api, m, MAP_PASSWORD)
    grant = assert_ok(r)["grant"]
    assert r.header("Cache-Control") == "no-store"

    r = api.get(PUBLIC.format(m["id"]), headers={"X-Map-Grant": grant})
    doc = assert_ok(r)
    assert r.header("Cache-Control") == "private, no-store"
    assert source_status(api, doc["token"], "public.e2e_places") == 200  # the token then works for tiles
    assert assert_ok(api.get(PUBLIC.format(m["id"]), params={"grant": grant}))["token"] == doc["token"]

    # A grant opens its own map only, and a new password ends the old password's grants.
    other = public_map(api, admin)
    assert_ok(api.patch(f"{MAPS}/{other['id']}", token=admin.token, json_body={"password": MAP_PASSWORD}))
    assert_error(api.get(PUBLIC.format(other["id"]), headers={"X-Map-Grant": grant}), 401, "map_password_required")
    assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"password": "a-new-password-9"}))
    assert_error(api.get(PUBLIC.format(m["id"]), headers={"X-Map-Grant": grant}), 401, "map_password_required")

    # The owner still opens it in the builder; removing the password makes it plainly public again.
    assert assert_ok(api.get(f"{MAPS}/{m['id']}", token=admin.token))["passwordProtected"] is True
    assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"password": None}))
    assert assert_ok(api.get(PUBLIC.format(m["id"])))["token"] == doc["token"]


def test_password_guesses_are_throttled_per_address_and_map(api, admin, dw):
    m = public_map(api, admin)
    other = public_map(api, admin)
    for target in (m, other):
        assert_ok(api.patch(f"{MAPS}/{target['id']}", token=admin.token, json_body={"password": MAP_PASSWORD}))
    statuses = [access(api, m, f"wrong-guess-{i}").status for i in range(5)]
    assert statuses == [401] * 5
    r = access(api, m, "wrong-guess-6")
    body = assert_error(r, 429, "map_password_throttled")
    assert int(r.header("Retry-After")) >= 1 and body["retry_after"] >= 1
    # While throttled even the right password waits: guessing cannot be sped up by luck.
    assert_error(access(api, m, MAP_PASSWORD), 429, "map_password_throttled")
    assert_error(api.get(PUBLIC.format(m["id"])), 401, "map_password_required")
    # Another map is not affected by this map's failures.
    assert "grant" in assert_ok(access(api, other, MAP_PASSWORD))


def test_deleting_a_published_map_purges_its_published_sources_too(api, admin, dw, stack):
    m = public_map(api, admin, datasets=[dataset()])
    assert_ok(publish(api, admin, m))
    query = "SELECT cartodb_id, geom FROM public.e2e_places WHERE population > 250"
    assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"datasets": [dataset(source=query, type="query")]}))
    assert api.delete(f"{MAPS}/{m['id']}", token=admin.token).status == 204
    sources = metadata(stack, "SELECT string_agg(d->>'source', '|' ORDER BY d->>'source') FROM jobs j, "
                              "jsonb_array_elements(j.payload->'datasets') d "
                              f"WHERE j.kind = 'map.deleted' AND j.payload->>'mapId' = '{m['id']}'").strip()
    # The draft's query and the published table were both served under this map: both are purged.
    assert sources.split("|") == sorted([query, "public.e2e_places"]), sources
