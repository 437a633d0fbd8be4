"""Workflows (issue 17): import_url loads a file from a URL with the URL imports' machinery (SSRF guard,
format detection, ogr2ogr) into the workflow's schema, cached by URL like any node: a second run does not
download again. The loaded values and what a downstream filter keeps are checked against the file."""

from __future__ import annotations

import http.server
import json
import threading

import helpers as h
from test_workflows import WF, create, edge, node, start, wait_run

FEATURES = [{"type": "Feature", "properties": {"name": f"p{i}", "pop": i * 1000},
             "geometry": {"type": "Point", "coordinates": [-3.7 + i * 0.01, 40.4 + i * 0.01]}} for i in range(1, 8)]


class Files(http.server.BaseHTTPRequestHandler):
    hits: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        Files.hits.append(self.path)
        body = json.dumps({"type": "FeatureCollection", "features": FEATURES}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/geo+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_import_url_loads_the_file_once_through_the_ssrf_guard(api, admin, stack):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    Files.hits.clear()
    url = f"http://127.0.0.1:{port}/places.geojson"
    try:
        # A malformed URL is a 400 naming the node and parameter, and nothing runs.
        bad = create(api, admin.token, [node("imp", "import_url", url="ftp://example.com/x.csv")], [])
        body = h.assert_error(api.post(f"{WF}/{bad['id']}/runs", json_body={}, token=admin.token), 400, "invalid_workflow")
        assert body["node"] == "imp" and body["parameter"] == "url", body
        wf = create(api, admin.token, [
            node("imp", "import_url", url=url),
            node("big", "filter", column="pop", operator=">", value="3000"),
        ], [edge("imp", "big")])
        # Loopback without the operator's allow-list: refused as a node error, nothing downloaded.
        refused = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]), timeout=120)
        assert refused["status"] == "failure", refused
        assert refused["nodes"]["imp"]["status"] == "failure" and "loopback" in refused["nodes"]["imp"]["error"], refused
        assert "imp" in refused["error"], refused
        assert Files.hits == []
        stack.stop_api("sql-worker")
        stack.start_worker("sql-worker", h.BIN / "tessera-sql-worker",
                           env={"TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST": f"127.0.0.1:{port}"})
        done = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]), timeout=300)
        assert done["status"] == "success", done
        assert Files.hits == ["/places.geojson"], Files.hits
        imp, big = done["nodes"]["imp"], done["nodes"]["big"]
        assert imp["rows"] == len(FEATURES) and not imp["reused"], imp
        assert big["rows"] == sum(1 for f in FEATURES if f["properties"]["pop"] > 3000), big
        loaded = h.warehouse(stack, f"""SELECT string_agg(name || ':' || pop || ':' || round(ST_X(geom)::numeric, 2) || ':'
                                                          || round(ST_Y(geom)::numeric, 2), ',' ORDER BY name) FROM {imp['table']}""")
        expected = ",".join(f"{f['properties']['name']}:{f['properties']['pop']}:{f['geometry']['coordinates'][0]:.2f}:"
                            f"{f['geometry']['coordinates'][1]:.2f}" for f in sorted(FEATURES, key=lambda f: f["properties"]["name"]))
        assert loaded == expected, (loaded, expected)
        assert h.warehouse(stack, f"SELECT Find_SRID('{imp['table'].split('.')[0]}', '{imp['table'].split('.')[1]}', 'geom')") == "4326"
        # Same URL: the node is reused, nothing is downloaded again.
        again = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]), timeout=300)
        assert again["status"] == "success" and again["nodes"]["imp"]["reused"] and again["nodes"]["big"]["reused"], again
        assert Files.hits == ["/places.geojson"], Files.hits
        # Export as SQL still lists every node (the filter is compiled once the file is loaded).
        script = api.get(f"{WF}/{wf['id']}/sql", token=admin.token)
        assert script.status == 200 and "-- imp (import_url)" in script.text and "-- big (filter)" in script.text, script
    finally:
        server.shutdown()
        stack.stop_api("sql-worker")
        stack.start_worker("sql-worker", h.BIN / "tessera-sql-worker")
