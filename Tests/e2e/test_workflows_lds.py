"""Workflows (issue 17): the location-service components through the organisation's LDS providers and
quotas — geocode over the local gazetteer, isolines and route over the local road graph (the synthetic
grid of test_lds_routing). Each node's answers equal what the LDS API answers for the same question,
each call is charged to the same quota, and an exhausted quota fails the run naming the node."""

from __future__ import annotations

import json

import pytest

import helpers as h
import osm_grid
from test_lds import gazetteer, stats  # noqa: F401  (fixture and helper reused)
from test_lds_routing import roads  # noqa: F401
from test_workflows import create, edge, node, start, wait_run

LDS = "/api/v3/lds"


@pytest.fixture(scope="module")
def lds_token(make_token, gazetteer):  # noqa: F811
    return make_token(["public.e2e_places"], allowed_apis=["lds"])["token"]


def same_geometry(stack, table, where, geojson) -> bool:
    return h.warehouse(stack, f"""SELECT bool_and(ST_Equals(geom, ST_SetSRID(ST_GeomFromGeoJSON('{json.dumps(geojson)}'), 4326)))
                                  FROM {table} WHERE {where}""") == "t"


def test_geocode_uses_the_providers_and_charges_the_quota(api, admin, stack, lds_token):
    h.warehouse(stack, """DROP TABLE IF EXISTS public.wf_addresses;
        CREATE TABLE public.wf_addresses AS SELECT * FROM (VALUES (1, 'Zaragoza'), (2, 'Lima'), (3, 'Qxzqwvvk Jjjqqq'), (4, ''))
        AS v(id, address)""")
    wf = create(api, admin.token, [node("a", "table", table="public.wf_addresses"), node("geo", "geocode", address="address")],
                [edge("a", "geo")])
    used = stats(api, lds_token)["geocoding"]["used"]
    run = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]), timeout=300)
    assert run["status"] == "success", run
    table = run["nodes"]["geo"]["table"]
    assert run["nodes"]["geo"]["rows"] == 4
    # Three addresses asked (the empty one is not), and charged.
    assert stats(api, lds_token)["geocoding"]["used"] == used + 3
    for name in ("Zaragoza", "Lima"):
        answer = h.assert_ok(api.get(f"{LDS}/geocoding/geocode", params={"address": name}, token=lds_token))[0]["value"][0]
        lon, lat = h.warehouse(stack, f"SELECT ST_X(geom) || ',' || ST_Y(geom) FROM {table} WHERE address = '{name}'").split(",")
        assert abs(float(lon) - answer["longitude"]) < 1e-9 and abs(float(lat) - answer["latitude"]) < 1e-9, (name, answer)
    assert h.warehouse(stack, f"SELECT count(*) FROM {table} WHERE geom IS NULL") == "2"
    # The helper columns are gone; the input's columns are kept.
    columns = h.warehouse(stack, f"SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute "
                                 f"WHERE attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped")
    assert columns == "id,address,geom,geocode_relevance", columns
    # A second run reuses the node: nothing is asked or charged again (the two API calls above cost 2).
    used = stats(api, lds_token)["geocoding"]["used"]
    again = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]), timeout=300)
    assert again["status"] == "success" and again["nodes"]["geo"]["reused"], again
    assert stats(api, lds_token)["geocoding"]["used"] == used


def test_an_exhausted_quota_fails_the_run_naming_the_node(api, admin, stack, lds_token):
    h.warehouse(stack, """DROP TABLE IF EXISTS public.wf_addresses2;
        CREATE TABLE public.wf_addresses2 AS SELECT * FROM (VALUES (1, 'Paris'), (2, 'Madrid')) AS v(id, address)""")
    wf = create(api, admin.token, [node("a", "table", table="public.wf_addresses2"), node("geo", "geocode", address="address")],
                [edge("a", "geo")])
    used = stats(api, lds_token)["geocoding"]["used"]
    stack.tessera("lds", "quota", "set", "--email", stack.admin_email, "--service", "geocoding", "--quota", str(used + 1))
    try:
        run = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]), timeout=300)
    finally:
        stack.tessera("lds", "quota", "set", "--email", stack.admin_email, "--service", "geocoding", "--quota", "default")
    assert run["status"] == "failure", run
    assert run["nodes"]["geo"]["status"] == "failure" and "quota exceeded" in run["nodes"]["geo"]["error"], run["nodes"]
    assert "geo" in run["error"] and "geocoding quota" in run["error"], run["error"]
    # Nothing was charged for the refused batch, and no half-filled table was left.
    assert stats(api, lds_token)["geocoding"]["used"] == used
    assert run["nodes"]["geo"].get("table") is None


def test_isolines_and_routes_equal_the_lds_api_answers(api, admin, stack, lds_token, roads):  # noqa: F811
    (lon0, lat0), (lon1, lat1) = osm_grid.coord(0, 0), osm_grid.coord(4, 4)
    h.warehouse(stack, f"""DROP TABLE IF EXISTS public.wf_grid_points;
        CREATE TABLE public.wf_grid_points AS SELECT * FROM (VALUES
          (1, 'a', ST_SetSRID(ST_MakePoint({lon0}, {lat0}), 4326)), (2, 'b', ST_SetSRID(ST_MakePoint({lon1}, {lat1}), 4326)))
        AS v(id, name, geom)""")
    wf = create(api, admin.token, [
        node("p", "table", table="public.wf_grid_points"),
        node("q", "filter", column="id", operator="=", value="2"),
        node("iso", "isolines", mode="walk", range=600),
        node("rt", "route", mode="car"),
    ], [edge("p", "iso"), edge("p", "q"), edge("p", "rt", "origins"), edge("q", "rt", "destinations")])
    iso_used, rt_used = stats(api, lds_token)["isolines"]["used"], stats(api, lds_token)["routing"]["used"]
    run = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]), timeout=300)
    assert run["status"] == "success", run
    assert run["nodes"]["iso"]["rows"] == 2 and run["nodes"]["rt"]["rows"] == 2
    assert stats(api, lds_token)["isolines"]["used"] == iso_used + 2
    assert stats(api, lds_token)["routing"]["used"] == rt_used + 2
    iso = run["nodes"]["iso"]["table"]
    for pid, (lon, lat) in ((1, (lon0, lat0)), (2, (lon1, lat1))):
        feature = h.assert_ok(api.get(f"{LDS}/isolines", params={"origin": f"{lon},{lat}", "mode": "walk", "range": 600},
                                      token=lds_token))["features"][0]
        assert same_geometry(stack, iso, f"id = {pid}", feature["geometry"]), pid
    rt = run["nodes"]["rt"]["table"]
    # Destination columns that collide with the origins' are suffixed.
    assert h.warehouse(stack, f"SELECT count(*) FROM {rt} WHERE id_2 = 2") == "2"
    answer = h.assert_ok(api.get(f"{LDS}/routing", params={"origin": f"{lon0},{lat0}", "destination": f"{lon1},{lat1}", "mode": "car"},
                                 token=lds_token))
    assert same_geometry(stack, rt, "id = 1", answer["geometry"])
    distance, duration = h.warehouse(stack, f"SELECT distance || ',' || duration FROM {rt} WHERE id = 1").split(",")
    assert float(distance) == answer["properties"]["distance"] and float(duration) == answer["properties"]["duration"], answer
    # Origin equal to destination: the empty route is whatever the provider answers, but the row is there.
    assert h.warehouse(stack, f"SELECT count(*) FROM {rt} WHERE id = 2") == "1"
