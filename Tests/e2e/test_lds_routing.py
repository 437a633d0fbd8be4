"""Local routing and isolines (lds-api over pgRouting) on a synthetic OSM street grid loaded through
`tessera lds load-roads`: the chosen routes (one-way streets, a fast and a slow road class), their
lengths and durations, isolines that contain and exclude known points, and bad input.

The grid is Tests/e2e/osm_grid.py: node (i, j) at lon 10 + 0.002·i, lat 0.002·j; row 0 primary (70 km/h),
row 2 living_street (10 km/h), row 4 one-way eastward, everything else residential (30 km/h); walking is
5 km/h everywhere and ignores one-way streets."""
from __future__ import annotations

import math
import os

import pytest

import helpers as h
import osm_grid
from helpers import assert_error, assert_ok

ROUTING = "/api/v3/lds/routing"
ISOLINES = "/api/v3/lds/isolines"
KMH = {"primary": 70, "residential": 30, "living_street": 10, "walk": 5}


def at(i: float, j: float) -> str:
    """origin/destination text (lon,lat) of grid position (i, j)."""
    lon, lat = osm_grid.coord(i, j)
    return f"{lon},{lat}"


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine length; PostGIS measures on the spheroid, so comparisons allow 0.5 %."""
    (lon1, lat1), (lon2, lat2) = a, b
    p1, p2 = math.radians(lat1), math.radians(lat2)
    d = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(d))


def path(*cells: tuple[int, int]) -> list[list[float]]:
    return [list(osm_grid.coord(i, j)) for i, j in cells]


def length(coords: list[list[float]]) -> float:
    return sum(metres(tuple(a), tuple(b)) for a, b in zip(coords, coords[1:]))


def inside(point: tuple[float, float], geometry: dict) -> bool:
    """Even-odd ray casting over every ring of a Polygon or MultiPolygon (holes count as outside)."""
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    x, y = point
    hit = False
    for rings in polygons:
        for ring in rings:
            for (x1, y1), (x2, y2) in zip(ring, ring[1:]):
                if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                    hit = not hit
    return hit


def close(actual: float, expected: float, rel: float = 0.005) -> bool:
    return abs(actual - expected) <= rel * expected


@pytest.fixture(scope="module")
def lds_token(stack):
    out = stack.tessera("tokens", "create", "--email", stack.admin_email, "--apis", "lds")
    return out.strip().splitlines()[-1].strip()


def test_load_roads_refuses_what_is_not_osm_xml(stack, tmp_path):
    pbf = tmp_path / "extract.osm.pbf"
    pbf.write_bytes(b"\x00\x00\x00\x0dOSMHeader" + os.urandom(64))
    r = h.tessera(stack, "lds", "load-roads", "--osm", str(pbf), "--email", stack.admin_email, check=False)
    assert r.returncode != 0 and "not OSM XML" in r.stderr, r
    r = h.tessera(stack, "lds", "load-roads", "--osm", str(tmp_path / "missing.osm"), "--email", stack.admin_email, check=False)
    assert r.returncode != 0 and "cannot read" in r.stderr, r


@pytest.fixture(scope="module")
def roads(stack, tmp_path_factory):
    osm = osm_grid.write(tmp_path_factory.mktemp("osm") / "grid.osm")
    out = stack.tessera("lds", "load-roads", "--osm", str(osm), "--email", stack.admin_email)
    assert "osm2pgrouting" in out, out          # its progress is shown
    assert "40 edges, 25 vertices" in out, out  # 10 streets split at every crossing
    return out


def route(api, token, origin, destination, mode="car", waypoints=None):
    params = {"origin": origin, "destination": destination, "mode": mode}
    if waypoints:
        params["waypoints"] = waypoints
    body = assert_ok(api.get(ROUTING, params=params, token=token))
    assert body["type"] == "Feature" and body["geometry"]["type"] == "LineString", body
    assert body["properties"]["provider"] == "local" and body["properties"]["mode"] == mode
    return body


def isolines(api, token, origin, ranges, mode="car", range_type="time"):
    body = assert_ok(api.get(ISOLINES, params={"origin": origin, "mode": mode, "range": ranges, "range_type": range_type},
                             token=token))
    assert body["type"] == "FeatureCollection", body
    for f in body["features"]:
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon"), f
        assert f["properties"]["range_type"] == range_type and f["properties"]["provider"] == "local"
    return body["features"]


# ------------------------------------------------------------------------------------------------
# no graph: must run first in this module (it drops whatever graph an earlier run left)


def test_without_a_road_graph_routing_is_a_clear_400(stack, api, lds_token):
    h.warehouse(stack, "DROP TABLE IF EXISTS carto_lds.road_edges, carto_lds.road_vertices")
    for path_, params in ((ROUTING, {"origin": at(0, 0), "destination": at(1, 1)}),
                          (ISOLINES, {"origin": at(0, 0), "range": 60})):
        doc = assert_error(api.get(path_, params=params, token=lds_token), 400, "road_graph_missing")
        assert "tessera lds load-roads" in doc["hint"], doc


# ------------------------------------------------------------------------------------------------
# routes


def test_car_takes_the_fast_road_when_it_is_quicker(api, lds_token, roads):
    body = route(api, lds_token, at(0, 1), at(4, 1))
    # Along row 1 is 888 m at 30 km/h (107 s); down to the primary, along it and back up is longer but quicker.
    expected = path((0, 1), (0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (4, 1))
    assert body["geometry"]["coordinates"] == expected
    props = body["properties"]
    assert close(props["distance"], length(expected)), props
    side = metres(osm_grid.coord(0, 0), osm_grid.coord(0, 1))
    along = length(expected) - 2 * side
    assert close(props["duration"], 2 * side / (KMH["residential"] / 3.6) + along / (KMH["primary"] / 3.6), 0.01), props
    assert props["duration"] < along / (KMH["residential"] / 3.6)


def test_walk_takes_the_shortest_way(api, lds_token, roads):
    body = route(api, lds_token, at(0, 1), at(4, 1), mode="walk")
    expected = path((0, 1), (1, 1), (2, 1), (3, 1), (4, 1))
    assert body["geometry"]["coordinates"] == expected
    assert close(body["properties"]["distance"], length(expected))
    assert close(body["properties"]["duration"], length(expected) / (KMH["walk"] / 3.6), 0.01)


def test_car_avoids_the_slow_road(api, lds_token, roads):
    body = route(api, lds_token, at(0, 2), at(4, 2))
    coords = body["geometry"]["coordinates"]
    # Row 2 is a living street (10 km/h, 320 s along it). A car goes round: two blocks down to the primary
    # and back (152 s) beats one block down to row 1 (160 s).
    assert not any(list(osm_grid.coord(i, 2)) in coords for i in (1, 2, 3)), coords
    expected = path((0, 2), (0, 1), (0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (4, 1), (4, 2))
    assert coords == expected
    assert close(body["properties"]["distance"], length(expected))
    assert body["properties"]["duration"] < length(path((0, 2), (4, 2))) / (KMH["living_street"] / 3.6)
    walk = route(api, lds_token, at(0, 2), at(4, 2), mode="walk")
    assert walk["geometry"]["coordinates"] == path((0, 2), (1, 2), (2, 2), (3, 2), (4, 2))


def test_car_respects_the_one_way_street_and_walkers_ignore_it(api, lds_token, roads):
    with_flow = route(api, lds_token, at(0, 4), at(4, 4))
    assert with_flow["geometry"]["coordinates"] == path((0, 4), (1, 4), (2, 4), (3, 4), (4, 4))
    against = route(api, lds_token, at(4, 4), at(0, 4))
    expected = path((4, 4), (4, 3), (3, 3), (2, 3), (1, 3), (0, 3), (0, 4))
    assert against["geometry"]["coordinates"] == expected, "row 4 is one-way eastward"
    assert close(against["properties"]["distance"], length(expected))
    walk = route(api, lds_token, at(4, 4), at(0, 4), mode="walk")
    assert walk["geometry"]["coordinates"] == path((4, 4), (3, 4), (2, 4), (1, 4), (0, 4))


def test_waypoints_are_visited_in_order(api, lds_token, roads):
    lon, lat = osm_grid.coord(0, 4)
    body = route(api, lds_token, at(0, 0), at(4, 4), waypoints=f"{lat},{lon}")  # waypoints are lat,lon
    coords = body["geometry"]["coordinates"]
    assert coords[0] == list(osm_grid.coord(0, 0)) and coords[-1] == list(osm_grid.coord(4, 4))
    assert list(osm_grid.coord(0, 4)) in coords
    assert close(body["properties"]["distance"], length(path((0, 0), (0, 4), (4, 4))))


def test_points_on_the_same_crossing_add_no_leg(api, lds_token, roads):
    lon, lat = osm_grid.coord(0, 0)
    body = route(api, lds_token, at(0, 0), at(4, 0), waypoints=f"{lat + 0.0001},{lon}")
    assert body["geometry"]["coordinates"] == path((0, 0), (1, 0), (2, 0), (3, 0), (4, 0))
    same = route(api, lds_token, at(2, 2), at(2.05, 1.95))
    assert same["properties"]["distance"] == 0 and same["properties"]["duration"] == 0
    assert same["geometry"]["coordinates"] == path((2, 2), (2, 2))


def test_points_between_crossings_snap_to_the_nearest_one(api, lds_token, roads):
    body = route(api, lds_token, at(0.1, 0.9), at(3.95, 1.05))
    assert body["geometry"]["coordinates"][0] == list(osm_grid.coord(0, 1))
    assert body["geometry"]["coordinates"][-1] == list(osm_grid.coord(4, 1))


# ------------------------------------------------------------------------------------------------
# isolines


def test_car_isoline_follows_the_fast_road(api, lds_token, roads):
    (one,) = isolines(api, lds_token, at(0, 0), 60)
    area = one["geometry"]
    # 60 s reach the far end of the primary (888 m, 46 s) but only ≈ 500 m up a residential street.
    assert inside(osm_grid.coord(0.25, 0.25), area)
    assert inside(osm_grid.coord(3.5, 0.15), area)
    assert not inside(osm_grid.coord(0.15, 3.25), area)
    assert not inside(osm_grid.coord(3.5, 3.5), area)
    assert one["properties"]["range"] == 60 and one["properties"]["mode"] == "car"


def test_isolines_for_several_ranges_come_in_request_order_and_grow(api, lds_token, roads):
    features = isolines(api, lds_token, at(0, 0), "90,30")
    assert [f["properties"]["range"] for f in features] == [90, 30]
    far = osm_grid.coord(2.5, 1.5)
    assert inside(far, features[0]["geometry"]) and not inside(far, features[1]["geometry"])


def test_walk_isoline_by_distance_ignores_one_way(api, lds_token, roads):
    (walk,) = isolines(api, lds_token, at(0, 0), 300, mode="walk", range_type="distance")
    assert inside(osm_grid.coord(0.25, 0.25), walk["geometry"])
    assert not inside(osm_grid.coord(1.5, 1.5), walk["geometry"])
    assert not inside(osm_grid.coord(2, 0.05), walk["geometry"]), "444 m away along the street"
    # From the east end of the one-way row 4, walkers go west along it; cars cannot.
    west = osm_grid.coord(3.25, 3.9)
    (walk,) = isolines(api, lds_token, at(4, 4), 300, mode="walk", range_type="distance")
    (car,) = isolines(api, lds_token, at(4, 4), 300, mode="car", range_type="distance")
    assert inside(west, walk["geometry"])
    assert not inside(west, car["geometry"])


# ------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("params, code", [
    ({"origin": "10,91", "destination": at(1, 1)}, "invalid_coordinates"),
    ({"origin": "200,0", "destination": at(1, 1)}, "invalid_coordinates"),
    ({"origin": "ten,zero", "destination": at(1, 1)}, "invalid_coordinates"),
    ({"origin": at(0, 0)}, "missing_parameter"),
    ({"origin": at(0, 0), "destination": at(1, 1), "mode": "bike"}, "invalid_parameter"),
    ({"origin": at(0, 0), "destination": at(1, 1), "waypoints": "0.002"}, "invalid_coordinates"),
    ({"origin": "20,20", "destination": at(1, 1)}, "point_off_road_graph"),
])
def test_bad_routing_requests_are_400(api, lds_token, roads, params, code):
    assert_error(api.get(ROUTING, params=params, token=lds_token), 400, code)


@pytest.mark.parametrize("params, code", [
    ({"origin": at(0, 0), "range": 0}, "invalid_range"),
    ({"origin": at(0, 0), "range": -60}, "invalid_range"),
    ({"origin": at(0, 0), "range": 86400}, "invalid_range"),
    ({"origin": at(0, 0), "range": 10_000_000, "range_type": "distance"}, "invalid_range"),
    ({"origin": at(0, 0), "range": "soon"}, "invalid_range"),
    ({"origin": at(0, 0)}, "missing_parameter"),
    ({"origin": at(0, 0), "range": 60, "mode": "plane"}, "invalid_parameter"),
    ({"origin": at(0, 0), "range": 60, "range_type": "energy"}, "invalid_parameter"),
    ({"origin": "0,-91", "range": 60}, "invalid_coordinates"),
    ({"origin": "20,20", "range": 60}, "point_off_road_graph"),
])
def test_bad_isoline_requests_are_400(api, lds_token, roads, params, code):
    assert_error(api.get(ISOLINES, params=params, token=lds_token), 400, code)
