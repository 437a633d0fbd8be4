"""Metrics (issue 16 point 3): every program's Prometheus text at nginx's loopback metrics server
(GET /metrics/<program>): APIs answer through their own socket, workers through the file they write.
The series named here are the ones README "Metrics" documents."""
from __future__ import annotations

import http.client
import re

import helpers as h
from helpers import assert_ok, wait_until

APIS = ("workspace-api", "maps-api", "import-api", "lds-api")
WORKERS = ("sql-worker", "cdn-invalidator", "import-worker", "workspace-subscriber")
CLIENT = {"v": "3.4", "client": "deck-gl-carto", "deckglVersion": "9.1.8"}


def scrape(stack, program: str) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", stack.metrics_port, timeout=10)
    try:
        conn.request("GET", f"/metrics/{program}")
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type") or "", r.read().decode()
    finally:
        conn.close()


def value(text: str, series: str) -> float | None:
    """The value of one exact series line, e.g. 'tessera_job_duration_seconds_count{queue="sql",...}'."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def well_formed(text: str) -> None:
    """Every line is a comment or `name{labels} value` (what Prometheus' text parser accepts)."""
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+0-9.eEInf]+$')
    for line in text.splitlines():
        assert line.startswith("#") or sample.match(line), line


def test_every_program_answers_on_the_loopback_metrics_server(stack):
    for program in APIS:
        status, ctype, text = scrape(stack, program)
        assert status == 200 and ctype.startswith("text/plain"), (program, status, text[:200])
        well_formed(text)
    for program in WORKERS:
        # A worker writes its file at start and every few seconds.
        wait_until(lambda: scrape(stack, program)[0] == 200, 15)
        well_formed(scrape(stack, program)[2])
    assert scrape(stack, "no-such-program")[0] == 404


def test_requests_are_counted_per_route_and_status(stack, api, full_token):
    route = 'route="POST /api/v3/sql/{connection}/query"'
    series = 'tessera_http_request_duration_seconds_count{' + route + ',status="%d"}'
    before = scrape(stack, "maps-api")[2]
    ok, bad = value(before, series % 200) or 0, value(before, series % 400) or 0
    assert_ok(api.post("/api/v3/sql/carto_dw/query", json_body={"q": "SELECT 1 AS one"}, token=full_token))
    r = api.post("/api/v3/sql/carto_dw/query", json_body={}, token=full_token)
    assert r.status == 400, r
    after = scrape(stack, "maps-api")[2]
    assert value(after, series % 200) == ok + 1
    assert value(after, series % 400) == bad + 1
    # The histogram is whole: +Inf bucket equals the count, and a sum is there.
    assert value(after, 'tessera_http_request_duration_seconds_bucket{' + route + ',status="200",le="+Inf"}') == ok + 1
    assert value(after, 'tessera_http_request_duration_seconds_sum{' + route + ',status="200"}') is not None
    assert 'tessera_db_pool_in_use{pool="metadata"}' in after


def test_unknown_routes_are_one_series_not_one_per_path(stack, api):
    for path in ("/api/v3/sql/nope-1", "/api/v3/sql/nope-2"):
        assert api.get(path).status == 404
    text = scrape(stack, "maps-api")[2]
    assert 'route="unmatched",status="404"' in text
    assert "nope-1" not in text


def test_tile_sizes_are_observed(stack, api, full_token, dw):
    before = value(scrape(stack, "maps-api")[2], 'tessera_tile_size_bytes_count{format="mvt"}') or 0
    hs = assert_ok(api.get("/api/v3/maps/carto_dw/table", params={**CLIENT, "name": "public.e2e_places"}, token=full_token))
    tj = assert_ok(api.get(hs["tilejson"]["url"][0][len(stack.base_url):], params=CLIENT, token=full_token))
    tile = tj["tiles"][0][len(stack.base_url):].replace("{z}", "0").replace("{x}", "0").replace("{y}", "0")
    assert api.get(tile, token=full_token).status in (200, 204)
    assert value(scrape(stack, "maps-api")[2], 'tessera_tile_size_bytes_count{format="mvt"}') == before + 1


def test_worker_exports_job_outcomes_and_queue_depth(stack, api, full_token):
    series = 'tessera_job_duration_seconds_count{queue="sql",kind="batch_query",outcome="%s"}'
    text = scrape(stack, "sql-worker")[2]
    done, failed = value(text, series % "completed") or 0, value(text, series % "discarded") or 0
    for query in ("SELECT 1", "SELECT * FROM no_such_table_for_metrics"):
        assert_ok(api.post("/api/v3/sql/carto_dw/job", json_body={"query": query}, token=full_token), 201)

    def counted() -> bool:
        now = scrape(stack, "sql-worker")[2]
        # At least: the worker's metrics file is rewritten periodically, so the baseline read above may not yet
        # count a job of an earlier test that finished just before (seen in a full run: done + 2, never done + 1).
        return (value(now, series % "completed") or 0) >= done + 1 and (value(now, series % "discarded") or 0) >= failed + 1

    wait_until(counted, 30, interval=0.5)


def test_public_servers_never_serve_metrics(stack, api):
    # A client header cannot become the METRICS_SCRAPE parameter (headers arrive as HTTP_*).
    r = api.get("/api/v3/sql/carto_dw/query", headers={"Metrics-Scrape": "1", "METRICS_SCRAPE": "1"})
    assert "# TYPE" not in r.body.decode(errors="replace")
    # The public path /metrics/... is the workspace app's fallback page, never the registry.
    assert "# TYPE" not in api.get("/metrics/maps-api").body.decode(errors="replace")


def test_varnish_hit_ratio_from_the_cdn_invalidator(stack, api, full_token, dw):
    """README "Metrics": the cdn-invalidator reads Varnish's counters (varnishstat) when it writes its file."""
    wait_until(lambda: value(scrape(stack, "cdn-invalidator")[2], "tessera_varnish_cache_hits_total") is not None, 15)
    text = scrape(stack, "cdn-invalidator")[2]
    hits, misses = value(text, "tessera_varnish_cache_hits_total"), value(text, "tessera_varnish_cache_misses_total")
    hs = assert_ok(api.get("/api/v3/maps/carto_dw/table", params={**CLIENT, "name": "public.e2e_places"}, token=full_token))
    tj = assert_ok(api.get(hs["tilejson"]["url"][0][len(stack.base_url):], params=CLIENT, token=full_token))
    # A tile nobody asked for yet: a miss, then the same request a hit.
    tile = tj["tiles"][0][len(stack.base_url):].replace("{z}", "3").replace("{x}", "5").replace("{y}", "2")
    first, second = api.get(tile, token=full_token), api.get(tile, token=full_token)
    assert first.header("X-Cache") == "MISS" and second.header("X-Cache") == "HIT", (first.headers, second.headers)

    def counted() -> bool:
        now = scrape(stack, "cdn-invalidator")[2]
        return (value(now, "tessera_varnish_cache_hits_total") or 0) >= hits + 1 \
            and (value(now, "tessera_varnish_cache_misses_total") or 0) >= misses + 1

    wait_until(counted, 20, interval=0.5)
    now = scrape(stack, "cdn-invalidator")[2]
    h, m = value(now, "tessera_varnish_cache_hits_total"), value(now, "tessera_varnish_cache_misses_total")
    assert abs(value(now, "tessera_varnish_cache_hit_ratio") - h / (h + m)) < 1e-9
    assert '# TYPE tessera_varnish_cache_hits_total counter' in now
