"""External routing providers behind the LDS provider protocol: OSRM (routes; no isolines) and Valhalla
(routes and isochrones), each answered by a stand-in on loopback that speaks the provider's protocol and
records what it was asked. Provider timeouts are 504 and provider failures 502, as clear JSON errors."""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import assert_error, assert_ok

ROUTING = "/api/v3/lds/routing"
ISOLINES = "/api/v3/lds/isolines"
EMAIL = "routing-providers@example.org"


def encode_polyline(points: list[tuple[float, float]], precision: int = 6) -> str:
    """Google's polyline encoding of (lat, lon) pairs, as Valhalla sends route shapes."""
    out, last = [], (0, 0)
    for lat, lon in points:
        cur = (round(lat * 10 ** precision), round(lon * 10 ** precision))
        for delta in (cur[0] - last[0], cur[1] - last[1]):
            v = ~(delta << 1) if delta < 0 else delta << 1
            while v >= 0x20:
                out.append(chr((0x20 | (v & 0x1F)) + 63))
                v >>= 5
            out.append(chr(v + 63))
        last = cur
    return "".join(out)


class StandIn(BaseHTTPRequestHandler):
    """/ok/… answers like OSRM or Valhalla; /slow/… answers too late; /fail/… answers 500."""
    requests: list[urllib.parse.SplitResult] = []

    def log_message(self, *args):  # quiet
        pass

    def reply(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        StandIn.requests.append(url)
        mode, _, rest = url.path.lstrip("/").partition("/")
        if mode == "slow":
            time.sleep(3)
        if mode == "fail":
            return self.reply(500, {"error": "internal"})
        query = dict(urllib.parse.parse_qsl(url.query))
        if rest.startswith("route/v1/"):  # OSRM
            points = [[float(v) for v in p.split(",")] for p in rest.split("/", 3)[3].split(";")]
            return self.reply(200, {"code": "Ok", "waypoints": [],
                                    "routes": [{"geometry": {"type": "LineString", "coordinates": points},
                                                "distance": 1234.5, "duration": 99.9, "legs": []}]})
        if rest == "route":  # Valhalla
            locations = json.loads(query["json"])["locations"]
            legs = [{"shape": encode_polyline([(a["lat"], a["lon"]), (b["lat"], b["lon"])])}
                    for a, b in zip(locations, locations[1:])]
            return self.reply(200, {"trip": {"legs": legs, "summary": {"length": 1.2345, "time": 88.0}, "status": 0}})
        if rest == "isochrone":  # Valhalla: one square per contour, largest first (not the request's order)
            req = json.loads(query["json"])
            origin = req["locations"][0]
            features = []
            for contour in sorted(req["contours"], key=lambda c: -list(c.values())[0]):
                (metric, value), = contour.items()
                d = value / 1000
                ring = [[origin["lon"] - d, origin["lat"] - d], [origin["lon"] + d, origin["lat"] - d],
                        [origin["lon"] + d, origin["lat"] + d], [origin["lon"] - d, origin["lat"] + d],
                        [origin["lon"] - d, origin["lat"] - d]]
                features.append({"type": "Feature", "properties": {"contour": value, "metric": metric},
                                 "geometry": {"type": "Polygon", "coordinates": [ring]}})
            return self.reply(200, {"type": "FeatureCollection", "features": features})
        return self.reply(404, {"error": "unknown path"})


@pytest.fixture(scope="module")
def standin():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def org(stack):
    """A second organisation, so the session admin's organisation keeps its local provider."""
    stack.tessera("create-admin", "--email", EMAIL, "--password", "routing-" + os.urandom(8).hex(),
                  "--organization", "Routing Providers")
    return stack.tessera("tokens", "create", "--email", EMAIL, "--apis", "lds").strip().splitlines()[-1].strip()


def use(stack, service: str, provider: str, url: str, timeout_ms: int = 5000, key: str | None = None) -> None:
    """Configures the organisation's provider the way an admin does."""
    stack.tessera("lds", "provider", "set", "--email", EMAIL, "--service", service, "--provider", provider, "--url", url,
                  "--timeout-ms", str(timeout_ms), *(["--key", key] if key else []))
    # lds-api promises to see a provider change within 1 s (ProviderStore's in-process memo); on a fast
    # machine the next request would otherwise still meet the previous provider.
    time.sleep(1.2)


ROUTE = {"origin": "-3.70,40.42", "destination": "-3.68,40.40", "waypoints": "40.41,-3.69", "mode": "car"}


def test_osrm_route(stack, api, org, standin):
    token = org
    use(stack, "routing", "osrm", standin + "/ok/")
    StandIn.requests.clear()
    body = assert_ok(api.get(ROUTING, params=ROUTE, token=token))
    # Waypoints arrive lat,lon and are sent on as lon,lat between origin and destination.
    (asked,) = StandIn.requests
    assert asked.path == "/ok/route/v1/driving/-3.7,40.42;-3.69,40.41;-3.68,40.4", asked
    assert {"overview": "full", "geometries": "geojson"}.items() <= dict(urllib.parse.parse_qsl(asked.query)).items()
    assert body["geometry"] == {"type": "LineString", "coordinates": [[-3.7, 40.42], [-3.69, 40.41], [-3.68, 40.4]]}
    assert body["properties"] == {"distance": 1234.5, "duration": 99.9, "mode": "car", "provider": "osrm"}
    walk = assert_ok(api.get(ROUTING, params={**ROUTE, "mode": "walk"}, token=token))
    assert StandIn.requests[-1].path.startswith("/ok/route/v1/foot/") and walk["properties"]["mode"] == "walk"


def test_osrm_has_no_isolines(stack, api, org, standin):
    token = org
    use(stack, "isolines", "osrm", standin + "/ok")
    doc = assert_error(api.get(ISOLINES, params={"origin": "-3.7,40.42", "range": 600}, token=token), 400, "unsupported_provider")
    assert doc["error"] == "Unsupported provider"


def test_valhalla_route(stack, api, org, standin):
    token = org
    use(stack, "routing", "valhalla", standin + "/ok", key="k-123")
    StandIn.requests.clear()
    body = assert_ok(api.get(ROUTING, params={**ROUTE, "mode": "walk"}, token=token))
    query = dict(urllib.parse.parse_qsl(StandIn.requests[-1].query))
    assert query["api_key"] == "k-123", "the configured key goes where hosted Valhalla expects it"
    sent = json.loads(query["json"])
    assert sent["costing"] == "pedestrian"
    assert sent["locations"] == [{"lat": 40.42, "lon": -3.7}, {"lat": 40.41, "lon": -3.69}, {"lat": 40.4, "lon": -3.68}]
    # Two legs decoded from polyline6 and joined without repeating the shared point; km become metres.
    assert body["geometry"]["coordinates"] == [[-3.7, 40.42], [-3.69, 40.41], [-3.68, 40.4]]
    assert body["properties"] == {"distance": 1234.5, "duration": 88.0, "mode": "walk", "provider": "valhalla"}


def test_valhalla_isochrones_in_request_order(stack, api, org, standin):
    token = org
    use(stack, "isolines", "valhalla", standin + "/ok")
    body = assert_ok(api.get(ISOLINES, params={"origin": "-3.7,40.42", "range": "300,900", "mode": "car"}, token=token))
    sent = json.loads(dict(urllib.parse.parse_qsl(StandIn.requests[-1].query))["json"])
    assert sent["costing"] == "auto" and sent["contours"] == [{"time": 5}, {"time": 15}], "seconds become minutes"
    assert [f["properties"]["range"] for f in body["features"]] == [300, 900]
    assert [f["properties"]["provider"] for f in body["features"]] == ["valhalla", "valhalla"]
    small, large = (f["geometry"]["coordinates"][0] for f in body["features"])
    assert small[1][0] - small[0][0] < large[1][0] - large[0][0]
    dist = assert_ok(api.get(ISOLINES, params={"origin": "-3.7,40.42", "range": 2500, "range_type": "distance"}, token=token))
    sent = json.loads(dict(urllib.parse.parse_qsl(StandIn.requests[-1].query))["json"])
    assert sent["contours"] == [{"distance": 2.5}], "metres become kilometres"
    assert dist["features"][0]["properties"]["range_type"] == "distance"


@pytest.mark.parametrize("provider", ["osrm", "valhalla"])
def test_provider_timeout_is_504_and_failure_is_502(stack, api, org, standin, provider):
    token = org
    use(stack, "routing", provider, standin + "/slow", timeout_ms=300)
    doc = assert_error(api.get(ROUTING, params=ROUTE, token=token), 504, "provider_timeout")
    assert provider in doc["error"]
    use(stack, "routing", provider, standin + "/fail")
    doc = assert_error(api.get(ROUTING, params=ROUTE, token=token), 502, "provider_error")
    assert provider in doc["error"]
