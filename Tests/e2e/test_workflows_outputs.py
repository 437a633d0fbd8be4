"""Workflows (issue 17): the components that act outside the warehouse and the run bookkeeping.

- http_request POSTs the run's summary through the imports' SSRF guard: a loopback listener is refused
  (a node error, not retried) until the operator allow-lists its exact endpoint for the sql-worker.
- the workflow listing carries each workflow's last run.
- a run whose job the lease-expiry rescue discarded after its last attempt ends as failure.
"""

from __future__ import annotations

import http.server
import json
import signal
import threading

import helpers as h
from test_workflows import WF, create, edge, node, start, wait_run


class Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Hook.received.append((self.path, self.headers.get("Content-Type"), json.loads(body)))
        self.send_response(204)
        self.end_headers()


def test_http_request_posts_the_summary_only_to_allow_listed_private_endpoints(api, admin, stack):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    Hook.received.clear()
    try:
        wf = create(api, admin.token, [
            node("t", "table", table="public.world_countries"),
            node("hook", "http_request", url=f"http://127.0.0.1:{port}/hook?x=1"),
        ], [edge("t", "hook")])
        # A malformed URL is a 400 naming the node and parameter, and nothing runs.
        bad = create(api, admin.token, [node("t", "table", table="public.world_countries"),
                                        node("hook", "http_request", url="file:///etc/passwd")], [edge("t", "hook")])
        body = h.assert_error(api.post(f"{WF}/{bad['id']}/runs", json_body={}, token=admin.token), 400, "invalid_workflow")
        assert body["node"] == "hook" and body["parameter"] == "url", body
        # Loopback without the operator's allow-list: refused, named, not retried.
        refused = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]), timeout=120)
        assert refused["status"] == "failure", refused
        assert refused["nodes"]["hook"]["status"] == "failure" and "loopback" in refused["nodes"]["hook"]["error"], refused
        assert "hook" in refused["error"] and "refused" in refused["error"], refused
        assert Hook.received == []
        # Allow-listed for the worker (exact ip:port), the summary arrives once.
        stack.stop_api("sql-worker")
        stack.start_worker("sql-worker", h.BIN / "tessera-sql-worker",
                           env={"TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST": f"127.0.0.1:{port}"})
        rid = start(api, admin.token, wf["id"])
        done = wait_run(api, admin.token, wf["id"], rid, timeout=120)
        assert done["status"] == "success", done
        assert done["nodes"]["hook"]["httpStatus"] == 204, done["nodes"]
        assert len(Hook.received) == 1, Hook.received
        path, ctype, summary = Hook.received[0]
        assert path == "/hook?x=1" and ctype == "application/json"
        assert summary["workflow"] == wf["id"] and summary["run"] == rid and summary["node"] == "hook"
        assert summary["rows"] == int(h.warehouse(stack, "SELECT count(*) FROM public.world_countries")), summary
        assert "geom" in [c["name"] for c in summary["columns"]], summary
    finally:
        server.shutdown()
        stack.stop_api("sql-worker")
        stack.start_worker("sql-worker", h.BIN / "tessera-sql-worker")


def test_the_listing_carries_each_workflows_last_run(api, admin):
    wf = create(api, admin.token, [node("t", "table", table="public.world_countries")], [])
    listed = next(w for w in h.assert_ok(api.get(WF, token=admin.token))["results"] if w["id"] == wf["id"])
    assert listed["lastRun"] is None, listed
    rid = start(api, admin.token, wf["id"])
    assert wait_run(api, admin.token, wf["id"], rid)["status"] == "success"
    listed = next(w for w in h.assert_ok(api.get(WF, token=admin.token))["results"] if w["id"] == wf["id"])
    assert listed["lastRun"]["id"] == rid and listed["lastRun"]["status"] == "success", listed


def test_a_run_discarded_by_the_lease_rescue_after_its_last_attempt_ends_as_failure(api, admin, stack):
    wf = create(api, admin.token, [node("slow", "sql", query="SELECT pg_sleep(600) IS NULL AS wf_discard_probe")], [])
    rid = start(api, admin.token, wf["id"])
    h.wait_until(lambda: h.active_queries(stack, "wf_discard_probe") == 1, 60)
    # This was its last attempt: the worker dies, and the restarted worker's rescue discards the job.
    h.metadata(stack, f"UPDATE jobs SET max_attempts = attempt WHERE id = (SELECT job_id FROM workflow_runs WHERE id = {rid})")
    stack.stop_api("sql-worker", signal.SIGKILL)
    h.warehouse(stack, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%wf_discard_probe%' AND pid <> pg_backend_pid()")
    stack.start_worker("sql-worker", h.BIN / "tessera-sql-worker")
    h.wait_until(lambda: h.metadata(stack, f"SELECT j.state FROM jobs j JOIN workflow_runs r ON r.job_id = j.id WHERE r.id = {rid}") == "discarded", 120)
    run = wait_run(api, admin.token, wf["id"], rid, timeout=60)
    assert run["status"] == "failure", run
    assert "slow" in run["error"] and "last attempt" in run["error"], run
    assert run["nodes"]["slow"]["status"] == "failure", run["nodes"]


def test_create_map_makes_one_builder_map_of_the_result_owned_by_the_workflows_owner(api, admin, stack):
    wf = create(api, admin.token, [
        node("t", "table", table="public.world_countries"),
        node("b", "buffer", distance=1000),
        node("m", "create_map", title="Buffered countries"),
    ], [edge("t", "b"), edge("b", "m")])
    first = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]), timeout=300)
    assert first["status"] == "success", first
    map_id, table = first["nodes"]["m"]["mapId"], first["outputs"]["m"]
    assert table == f"{wf['schema']}.map_m", first["outputs"]
    assert h.warehouse(stack, f"SELECT count(*) = (SELECT count(*) FROM public.world_countries) FROM {table}") == "t"
    listed = h.assert_ok(api.get("/api/v3/workspace/maps", token=admin.token))["data"]
    mine = next(m for m in listed if m["id"] == map_id)
    assert mine["title"] == "Buffered countries" and mine["owner"]["id"] == wf["owner"], mine
    full = h.assert_ok(api.get(f"/api/v3/workspace/maps/{map_id}", token=admin.token))
    assert [(d["type"], d["connectionName"], d["source"], d["geoColumn"]) for d in full["datasets"]] == [
        ("table", "carto_dw", table, "geom")], full["datasets"]
    assert full["keplerMapConfig"]["config"]["visState"]["layers"][0]["config"]["dataId"] == full["datasets"][0]["id"]
    # A later run refreshes the same map's table; it does not make a second map.
    h.assert_ok(api.patch(f"{WF}/{wf['id']}", json_body={"nodes": [
        node("t", "table", table="public.world_countries"), node("b", "buffer", distance=2000),
        node("m", "create_map", title="Buffered countries")]}, token=admin.token))
    second = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]), timeout=300)
    assert second["status"] == "success" and second["nodes"]["m"]["mapId"] == map_id, second
    titles = [m["title"] for m in h.assert_ok(api.get("/api/v3/workspace/maps", token=admin.token))["data"]]
    assert titles.count("Buffered countries") == 1, titles
    # Nothing to draw: a node error, not a broken map.
    flat = create(api, admin.token, [node("s", "sql", query="SELECT 1 AS one"), node("m", "create_map", title="x")], [edge("s", "m")])
    failed = wait_run(api, admin.token, flat["id"], start(api, admin.token, flat["id"]), timeout=120)
    assert failed["status"] == "failure" and "geometry" in failed["nodes"]["m"]["error"], failed
