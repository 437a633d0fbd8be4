"""Workflows (issue 17) on the real stack: the demo workflow against the same computation by hand,
hotspot and kmeans on planted clusters, bad input, cancellation, reuse of unchanged nodes, kill -9 of the
sql-worker mid-run, and the scheduler under two workers.

Measurements (run times of the demo workflow, first and cached) are printed; run with -s to see them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

import helpers as h

WF = "/api/v3/workflows"
ISSUE_TYPES = {
    "table", "sql", "import_url", "select", "filter", "rename", "add_column", "join", "union", "group_by", "order_limit",
    "sample", "distinct", "point_from_lonlat", "buffer", "centroid", "convex_hull", "simplify", "area_length",
    "spatial_join", "clip", "intersection", "difference", "nearest", "distance_matrix", "h3_from_geo", "h3_polyfill",
    "h3_boundary", "quadbin_from_geo", "geocode", "isolines", "route", "kmeans", "dbscan", "hotspot", "moran",
    "save_table", "create_map", "http_request",
}


@pytest.fixture(scope="module")
def places(stack):
    """The demo data (GeoNames populated_places) as `make run` loads it; world_countries comes with the stack."""
    demo = h.REPO / "Tests" / "harness" / "demo_data.py"
    subprocess.run([sys.executable, str(demo), "--dsn", stack.warehouse_dsn], check=True, timeout=1800,
                   capture_output=True)
    return int(h.warehouse(stack, "SELECT count(*) FROM public.populated_places"))


def node(id, type, **params):
    return {"id": id, "type": type, "params": params, "position": {"x": 0, "y": 0}}


def edge(source, target, port=None):
    e = {"source": source, "target": target}
    if port:
        e["targetPort"] = port
    return e


def create(api, token, nodes, edges, **extra):
    body = {"name": h.unique("wf"), "connection": "carto_dw", "nodes": nodes, "edges": edges, **extra}
    return h.assert_ok(api.post(WF, json_body=body, token=token), 201)


def start(api, token, wid, **body):
    run = h.assert_ok(api.post(f"{WF}/{wid}/runs", json_body=body, token=token), 201)
    assert run["status"] == "pending" and run["id"], run
    return run["id"]


def wait_run(api, token, wid, rid, timeout=600.0, until=("success", "failure", "cancelled")):
    deadline = time.monotonic() + timeout
    while True:
        body = h.assert_ok(api.get(f"{WF}/{wid}/runs/{rid}", token=token))
        if body["status"] in until:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


DEMO_HAND_SQL = """
    SELECT c.name AS country, count(*) AS cities, sum(p.population) AS population
    FROM public.populated_places p
    JOIN public.world_countries c ON ST_Intersects(ST_Buffer(p.geom::geography, 50000)::geometry, c.geom)
    WHERE p.population > 1000000 GROUP BY c.name"""


def demo_nodes(out_table):
    return [
        node("places", "table", table="public.populated_places"),
        node("big", "filter", column="population", operator=">", value="1000000"),
        node("buf", "buffer", distance=50000),
        node("countries", "table", table="public.world_countries"),
        node("sj", "spatial_join", predicate="intersects"),
        node("grp", "group_by", columns=["name_2"],
             aggregates=[{"op": "count", "alias": "cities"}, {"column": "population", "op": "sum", "alias": "population"}]),
        node("rename", "rename", columns={"name_2": "country"}),
        node("save", "save_table", table=out_table, mode="replace"),
    ], [edge("places", "big"), edge("big", "buf"), edge("buf", "sj", "main"), edge("countries", "sj", "secondary"),
        edge("sj", "grp"), edge("grp", "rename"), edge("rename", "save")]


def test_components_table_has_the_issue_types(api, admin):
    body = h.assert_ok(api.get(f"{WF}/components", token=admin.token))
    types = {c["type"] for c in body["results"]}
    assert types == ISSUE_TYPES
    for c in body["results"]:
        assert {"type", "category", "title", "inputs", "outputs", "params"} <= set(c), c
    buffer = next(c for c in body["results"] if c["type"] == "buffer")
    assert any(p["name"] == "distance" and p["required"] for p in buffer["params"])


def test_demo_workflow_equals_hand_sql_and_reuses_unchanged_nodes(api, admin, stack, places):
    assert places > 100_000
    nodes, edges = demo_nodes("public.wf_demo_out")
    wf = create(api, admin.token, nodes, edges)
    first = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]))
    assert first["status"] == "success", first
    assert first["outputs"] == {"save": "public.wf_demo_out"}
    assert all(n["status"] == "success" and not n["reused"] for n in first["nodes"].values()), first["nodes"]
    assert first["nodes"]["big"]["rows"] == int(h.warehouse(stack, "SELECT count(*) FROM populated_places WHERE population > 1000000"))
    diff = h.warehouse(stack, f"""
        WITH hand AS ({DEMO_HAND_SQL}), wf AS (SELECT country, cities, population FROM public.wf_demo_out)
        SELECT (SELECT count(*) FROM hand) || ':' || (SELECT count(*) FROM ((TABLE hand EXCEPT TABLE wf) UNION ALL (TABLE wf EXCEPT TABLE hand)) d)""")
    total, mismatches = diff.split(":")
    assert int(total) > 20 and mismatches == "0", diff

    second = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]))
    assert second["status"] == "success", second
    assert all(n["reused"] for n in second["nodes"].values()), second["nodes"]
    print(f"\n[workflows] demo workflow: first run {first['ms']} ms, second (cached) run {second['ms']} ms; "
          f"node ms first={ {k: v['ms'] for k, v in first['nodes'].items()} } second={ {k: v['ms'] for k, v in second['nodes'].items()} }")

    # A changed parameter recomputes that node and everything after it, not what comes before.
    h.assert_ok(api.patch(f"{WF}/{wf['id']}", json_body={"nodes": [
        n if n["id"] != "buf" else node("buf", "buffer", distance=20000) for n in nodes]}, token=admin.token))
    third = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]))
    reused = {k for k, v in third["nodes"].items() if v["reused"]}
    assert reused == {"places", "big", "countries"}, third["nodes"]

    # Every node's last result can be previewed, with a Maps API source when it has a geometry.
    pv = h.assert_ok(api.get(f"{WF}/{wf['id']}/nodes/buf/preview", token=admin.token))
    assert pv["rows"] and any(c["type"].startswith("geometry") for c in pv["schema"]), pv["schema"]
    assert pv["source"]["type"] == "table" and pv["source"]["source"] == pv["table"]
    tile = api.get("/api/v3/maps/carto_dw/table", params={"name": pv["table"]}, token=admin.token)
    assert tile.status == 200, tile

    # The compiled script ("export as SQL") names every node.
    script = api.get(f"{WF}/{wf['id']}/sql", token=admin.token)
    assert script.status == 200 and all(f"-- {n['id']} (" in script.text for n in nodes), script.text

    # Deleting the workflow drops its warehouse schema (through the queue).
    schema = wf["schema"]
    assert h.warehouse(stack, f"SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'") == "1"
    assert api.delete(f"{WF}/{wf['id']}", token=admin.token).status == 204
    h.wait_until(lambda: h.warehouse(stack, f"SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'") == "0", 30)


CLUSTERS = [(2.0, 41.0), (10.0, 50.0), (-3.7, 40.4)]


@pytest.fixture(scope="module")
def clustered(stack):
    """300 points around each planted centre (within ~5 km) and 60 spread over Europe."""
    centres = ", ".join(f"({i}, {x}, {y})" for i, (x, y) in enumerate(CLUSTERS))
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS public.wf_points;
        SELECT setseed(0.17);
        CREATE TABLE public.wf_points AS
        SELECT row_number() OVER () AS id, planted, ST_SetSRID(ST_MakePoint(x, y), 4326) AS geom FROM (
          SELECT c.i AS planted, c.x + (random() - 0.5) * 0.08 AS x, c.y + (random() - 0.5) * 0.08 AS y
          FROM (VALUES {centres}) c(i, x, y), generate_series(1, 300)
          UNION ALL
          SELECT NULL, -9 + random() * 30, 36 + random() * 20 FROM generate_series(1, 60)) p""")
    return "public.wf_points"


def test_kmeans_and_hotspot_find_the_planted_clusters(api, admin, stack, clustered):
    wf = create(api, admin.token, [
        node("pts", "table", table=clustered),
        node("planted", "filter", column="planted", operator="is_not_null"),
        node("km", "kmeans", k=3),
        node("hot", "hotspot", resolution=6),
        node("top", "order_limit", order_by=[{"column": "gi", "direction": "desc"}], limit=3),
        node("centres", "h3_boundary", column="h3"),
    ], [edge("pts", "planted"), edge("planted", "km"), edge("pts", "hot"), edge("hot", "top"), edge("top", "centres")])
    run = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]))
    assert run["status"] == "success", run
    km = run["nodes"]["km"]["table"]
    # Each planted cluster is one k-means cluster, and the three are different clusters (the background
    # points are left out: with k=3 k-means rightly gives a wide background a cluster of its own).
    per_planted = h.warehouse(stack, f"""
        SELECT string_agg(n::text || '/' || c::text, ',' ORDER BY planted) FROM (
          SELECT planted, count(DISTINCT cluster) AS n, min(cluster) AS c FROM {km} WHERE planted IS NOT NULL GROUP BY planted) s""")
    parts = [p.split("/") for p in per_planted.split(",")]
    assert len(parts) == 3 and all(n == "1" for n, _ in parts), per_planted
    assert len({c for _, c in parts}) == 3, per_planted
    # Gi* finds a significant hot spot (z > 2.58, 99%) on each planted centre and none in the background.
    hot = run["nodes"]["hot"]["table"]
    for x, y in CLUSTERS:
        z = float(h.warehouse(stack, f"SELECT max(gi) FROM {hot} WHERE ST_DWithin(geom::geography, ST_MakePoint({x}, {y})::geography, 15000)"))
        assert z > 2.58, (x, y, z)
    far = ", ".join(f"ST_MakePoint({x}, {y})" for x, y in CLUSTERS)
    background = float(h.warehouse(stack, f"""
        SELECT coalesce(max(gi), 0) FROM {hot} WHERE NOT EXISTS (
          SELECT 1 FROM unnest(ARRAY[{far}]) c WHERE ST_DWithin(geom::geography, c::geography, 50000))"""))
    assert background < 1.96, background
    assert run["nodes"]["centres"]["rows"] == 3


def test_bad_input_is_a_400_naming_node_and_parameter_and_nothing_runs(api, admin, stack, places):
    def refused(r, node_id, parameter):
        body = h.assert_error(r, 400, "invalid_workflow")
        assert body.get("node") == node_id and body.get("parameter") == parameter, body
        return body

    t = node("t", "table", table="public.populated_places")
    # a cycle
    r = api.post(WF, json_body={"name": "c", "connection": "carto_dw", "nodes": [
        t, node("a", "union"), node("b", "distinct")], "edges": [
        edge("t", "a", "main"), edge("b", "a", "secondary"), edge("a", "b")]}, token=admin.token)
    body = h.assert_error(r, 400, "invalid_workflow")
    assert "cycle" in body["error"] and body["node"] in ("a", "b"), body
    # a missing input
    refused(api.post(WF, json_body={"name": "m", "connection": "carto_dw", "nodes": [t, node("j", "join", left_key="a", right_key="b")],
                                    "edges": [edge("t", "j", "main")]}, token=admin.token), "j", "secondary")
    # an expression that is not one expression
    wf = create(api, admin.token, [t, node("f", "filter", expression="population > 0; DROP TABLE world_countries")], [edge("t", "f")])
    refused(api.post(f"{WF}/{wf['id']}/runs", json_body={}, token=admin.token), "f", "expression")
    # a type mismatch (geometry expected) and an unknown column, found at run time against the warehouse
    wf = create(api, admin.token, [t, node("b", "buffer", distance=10, geom="name")], [edge("t", "b")])
    body = refused(api.post(f"{WF}/{wf['id']}/runs", json_body={}, token=admin.token), "b", "geom")
    assert "geometry is expected" in body["error"]
    wf = create(api, admin.token, [t, node("f", "filter", column="populaton", operator=">", value="1")], [edge("t", "f")])
    refused(api.post(f"{WF}/{wf['id']}/runs", json_body={}, token=admin.token), "f", "column")
    # an expression the database rejects names the node too
    wf = create(api, admin.token, [t, node("x", "add_column", name="y", expression="no_such_column + 1")], [edge("t", "x")])
    body = refused(api.post(f"{WF}/{wf['id']}/runs", json_body={}, token=admin.token), "x", "expression")
    assert "no_such_column" in body["error"]
    assert h.assert_ok(api.get(f"{WF}/{wf['id']}/runs", token=admin.token))["total"] == 0
    # a schedule that is not a cron, a connection that does not exist
    r = api.post(WF, json_body={"name": "s", "connection": "carto_dw", "nodes": [t], "edges": [], "schedule": "every day"},
                 token=admin.token)
    assert h.assert_error(r, 400, "invalid_workflow")["parameter"] == "schedule"
    r = api.post(WF, json_body={"name": "s", "connection": "nope", "nodes": [t], "edges": []}, token=admin.token)
    assert h.assert_error(r, 400, "invalid_workflow")["parameter"] == "connection"
    # unknown component types and parameters
    r = api.post(WF, json_body={"name": "s", "connection": "carto_dw", "nodes": [node("z", "teleport")], "edges": []}, token=admin.token)
    assert h.assert_error(r, 400, "invalid_workflow")["node"] == "z"


def test_tokens_need_the_workflows_api_and_the_connection(api, admin, make_token):
    wf = create(api, admin.token, [node("t", "table", table="public.world_countries"),
                                   node("s", "save_table", table="public.wf_token_out")], [edge("t", "s")])
    sql_only = make_token(["public.world_countries"], allowed_apis=["sql"])["token"]
    h.assert_error(api.get(f"{WF}/{wf['id']}", token=sql_only), 403, "api_not_allowed")
    # A token acts as its creator (who owns this workflow) but writing needs the whole connection granted.
    scoped = make_token(["public.world_countries"], allowed_apis=["workflows"])["token"]
    assert h.assert_ok(api.get(f"{WF}/{wf['id']}", token=scoped))["id"] == wf["id"]
    h.assert_error(api.post(f"{WF}/{wf['id']}/runs", json_body={}, token=scoped), 403, "source_not_granted")
    full = make_token(["*"], allowed_apis=["workflows"])["token"]
    rid = start(api, full, wf["id"])
    assert wait_run(api, full, wf["id"], rid)["status"] == "success"


SLOW = "SELECT g, pg_sleep(0.02) IS NULL AS slept, 'wf_cancel_probe' AS probe FROM generate_series(1, 3000) g"


def test_cancel_stops_the_running_statement(api, admin, stack):
    wf = create(api, admin.token, [node("slow", "sql", query=SLOW)], [])
    rid = start(api, admin.token, wf["id"])
    wait_run(api, admin.token, wf["id"], rid, timeout=60, until=("running",))
    h.wait_until(lambda: h.active_queries(stack, "wf_cancel_probe") == 1, 30)
    cancelled = h.assert_ok(api.post(f"{WF}/{wf['id']}/runs/{rid}/cancel", json_body={}, token=admin.token))
    assert cancelled["status"] == "cancelled"
    h.wait_until(lambda: h.active_queries(stack, "wf_cancel_probe") == 0, 15)
    assert wait_run(api, admin.token, wf["id"], rid)["status"] == "cancelled"
    assert h.warehouse(stack, f"SELECT count(*) FROM pg_tables WHERE schemaname = '{wf['schema']}'") == "0"


def test_kill_9_mid_run_resumes_from_the_first_unfinished_node(api, admin, stack):
    wf = create(api, admin.token, [
        node("first", "table", table="public.world_countries"),
        node("slow", "add_column", name="slept", expression="(pg_sleep(0.03) IS NULL)::int + length('wf_kill_probe')"),
        node("save", "save_table", table="public.wf_kill_out"),
    ], [edge("first", "slow"), edge("slow", "save")])
    rid = start(api, admin.token, wf["id"])
    h.wait_until(lambda: h.active_queries(stack, "wf_kill_probe") == 1, 60)
    before = h.assert_ok(api.get(f"{WF}/{wf['id']}/runs/{rid}", token=admin.token))
    assert before["nodes"]["first"]["status"] == "success" and before["nodes"]["slow"]["status"] == "running", before
    stack.stop_api("sql-worker", signal.SIGKILL)
    assert h.warehouse(stack, "SELECT to_regclass('public.wf_kill_out') IS NULL") == "t"
    stack.start_worker("sql-worker", h.BIN / "tessera-sql-worker")
    after = wait_run(api, admin.token, wf["id"], rid, timeout=120)
    assert after["status"] == "success", after
    assert after["nodes"]["first"]["reused"] is True and after["nodes"]["slow"]["reused"] is False, after["nodes"]
    assert h.warehouse(stack, "SELECT count(*) = (SELECT count(*) FROM world_countries) FROM public.wf_kill_out") == "t"


def test_scheduler_under_two_workers_starts_each_due_run_once(api, admin, stack):
    stack.start_worker("sql-worker-2", h.BIN / "tessera-sql-worker")
    try:
        ids = [create(api, admin.token, [node("t", "table", table="public.world_countries")], [], schedule="0 0 1 1 *")["id"]
               for _ in range(4)]
        in_list = ", ".join(f"'{i}'" for i in ids)
        for round_ in range(3):
            # Make every workflow due now (as if its minute had come), several times over.
            h.metadata(stack, f"UPDATE workflows SET next_run_at = now() - interval '{round_ + 1} hours' WHERE id IN ({in_list})")
            h.wait_until(lambda: h.metadata(stack, f"SELECT count(*) FROM workflows WHERE id IN ({in_list}) AND next_run_at < now()") == "0", 30)
        h.wait_until(lambda: h.metadata(stack, f"SELECT count(*) FROM workflow_runs WHERE workflow_id IN ({in_list}) AND status <> 'success'") == "0", 120)
        counts = h.metadata(stack, f"""
            SELECT string_agg(n::text, ',') FROM (SELECT count(*) AS n FROM workflow_runs WHERE workflow_id IN ({in_list}) AND trigger = 'schedule'
            GROUP BY workflow_id, scheduled_for) s""")
        assert counts.split(",") == ["1"] * 12, counts
        # Run history and the next due time are visible on the workflow.
        w = h.assert_ok(api.get(f"{WF}/{ids[0]}", token=admin.token))
        assert w["lastRun"]["status"] == "success" and w["nextRunAt"].startswith(str(time.gmtime().tm_year + 1)), w
        assert len(h.assert_ok(api.get(f"{WF}/{ids[0]}/runs", token=admin.token))["results"]) == 3
    finally:
        stack.stop_api("sql-worker-2")


def test_viewers_read_shared_workflows_but_cannot_run_or_change_them(api, admin):
    email, password = f"wf-viewer-{h.unique('v')}@example.com", "viewer-pass-" + h.unique("p")
    inv = h.assert_ok(api.post("/api/v3/invitations", token=admin.token, json_body={"email": email, "role": "viewer"}), 201)
    h.assert_ok(api.post("/api/v3/auth/invitations/accept", json_body={"token": inv["token"], "password": password}), 201)
    viewer = h.login(api, email, password)
    wf = create(api, admin.token, [node("t", "table", table="public.world_countries")], [], privacy="organization")
    assert h.assert_ok(api.get(f"{WF}/{wf['id']}", session=viewer))["id"] == wf["id"]
    h.assert_error(api.post(f"{WF}/{wf['id']}/runs", json_body={}, session=viewer), 403, "role_forbidden")
    h.assert_error(api.patch(f"{WF}/{wf['id']}", json_body={"name": "x"}, session=viewer), 403, "role_forbidden")
    private = create(api, admin.token, [node("t", "table", table="public.world_countries")], [])
    h.assert_error(api.get(f"{WF}/{private['id']}", session=viewer), 404, "workflow_not_found")
    assert h.assert_ok(api.get(f"{WF}/{wf['id']}/runs", token=admin.token))["total"] == 0


def test_unused_intermediates_are_pruned_after_their_age(api, admin, stack):
    """The sql-worker with TESSERA_WORKFLOW_INTERMEDIATE_TTL_S=0 drops what the last run did not use."""
    stack.stop_api("sql-worker")
    stack.start_worker("sql-worker", h.BIN / "tessera-sql-worker", env={"TESSERA_WORKFLOW_INTERMEDIATE_TTL_S": "0"})
    try:
        nodes = [node("t", "table", table="public.world_countries"), node("b", "buffer", distance=1000)]
        wf = create(api, admin.token, nodes, [edge("t", "b")])
        first = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]))
        old = first["nodes"]["b"]["table"]
        h.assert_ok(api.patch(f"{WF}/{wf['id']}", json_body={"nodes": [nodes[0], node("b", "buffer", distance=2000)]}, token=admin.token))
        second = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"]))
        assert second["status"] == "success" and second["nodes"]["b"]["table"] != old
        tables = h.warehouse(stack, f"SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = '{wf['schema']}'")
        assert sorted(tables.split(",")) == sorted([second["nodes"]["t"]["table"], second["nodes"]["b"]["table"]]), tables
    finally:
        stack.stop_api("sql-worker")
        stack.start_worker("sql-worker", h.BIN / "tessera-sql-worker")


def test_every_sql_component_runs_in_the_warehouse(api, admin, stack, clustered):
    """One workflow using every component that compiles to SQL (the location services and import_url have
    their own files, test_workflows_lds.py and test_workflows_import_url.py), run twice: appends add rows,
    everything else is reused."""
    n = [
        node("pts", "table", table=clustered), node("countries", "table", table="public.world_countries"),
        node("lonlat", "sql", query=f"SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat, 'a;b' AS s FROM {clustered}"),
        node("pt", "point_from_lonlat", lon="lon", lat="lat"),
        node("sel", "select", columns=["id", "geom"]), node("ren", "rename", columns={"id": "pid"}),
        node("add", "add_column", name="dbl", expression="id * {{factor}}"),
        node("join", "join", left_key="id", right_key="id", join_type="left"),
        node("uni", "union"), node("smp", "sample", percent=50, seed=3), node("dst", "distinct", columns=["planted"]),
        node("top", "order_limit", order_by=[{"column": "id", "direction": "desc"}], limit=10),
        node("cen", "centroid"), node("hull", "convex_hull", group_by="planted"), node("simp", "simplify", tolerance=0.1),
        node("area", "area_length"), node("buf", "buffer", distance=20000),
        node("sjd", "spatial_join", predicate="dwithin", distance=1000),
        node("sja", "spatial_join", predicate="within", join_type="left", aggregates=[{"op": "count", "alias": "n"}]),
        node("clip", "clip"), node("inter", "intersection"), node("diff", "difference"),
        node("near", "nearest", k=2, max_distance=500000),
        node("dm", "distance_matrix", origin_id="id", destination_id="cartodb_id"),
        node("h3", "h3_from_geo", resolution=7), node("fill", "h3_polyfill", resolution=6), node("hb", "h3_boundary"),
        node("qb", "quadbin_from_geo", resolution=10), node("db", "dbscan", eps=3000, min_points=5),
        node("moran", "moran", value="planted", distance=20000),
        node("app", "save_table", table="public.wf_append_out", mode="append"),
    ]
    e = [
        edge("lonlat", "pt"), edge("pts", "sel"), edge("sel", "ren"), edge("pts", "add"),
        edge("pts", "join", "main"), edge("add", "join", "secondary"), edge("pts", "uni", "main"), edge("pts", "uni", "secondary"),
        edge("pts", "smp"), edge("pts", "dst"), edge("pts", "top"), edge("countries", "cen"), edge("pts", "hull"),
        edge("countries", "simp"), edge("countries", "area"), edge("pts", "buf"),
        edge("pts", "sjd", "main"), edge("countries", "sjd", "secondary"), edge("pts", "sja", "main"), edge("countries", "sja", "secondary"),
        edge("countries", "clip", "main"), edge("buf", "clip", "overlay"), edge("countries", "inter", "main"), edge("buf", "inter", "overlay"),
        edge("countries", "diff", "main"), edge("buf", "diff", "overlay"), edge("top", "near", "main"), edge("cen", "near", "secondary"),
        edge("top", "dm", "origins"), edge("cen", "dm", "destinations"), edge("pts", "h3"), edge("buf", "fill"), edge("h3", "hb"),
        edge("pts", "qb"), edge("pts", "db"), edge("pts", "moran"), edge("top", "app"),
    ]
    h.warehouse(stack, "DROP TABLE IF EXISTS public.wf_append_out")
    wf = create(api, admin.token, n, e, variables=[{"name": "factor", "type": "number", "default": 2}])
    first = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"], variables={"factor": 3}))
    assert first["status"] == "success", {k: v for k, v in first["nodes"].items() if v["status"] != "success"} or first
    rows = {k: v["rows"] for k, v in first["nodes"].items()}
    assert rows["top"] == 10 and rows["uni"] == 2 * rows["pts"] and rows["dm"] == 10 * rows["cen"] and 10 <= rows["near"] <= 20, rows  # within 500 km only
    assert rows["moran"] == 1 and rows["dst"] == 4 and 0 < rows["smp"] < rows["pts"], rows
    assert h.warehouse(stack, f"SELECT bool_and(dbl = id * 3) FROM {first['nodes']['add']['table']}") == "t"
    second = wait_run(api, admin.token, wf["id"], start(api, admin.token, wf["id"], variables={"factor": 3}))
    assert second["status"] == "success"
    assert {k for k, v in second["nodes"].items() if not v["reused"]} == {"lonlat", "pt"}, second["nodes"]  # custom SQL always reruns, and so does what reads it
    assert h.warehouse(stack, "SELECT count(*) FROM public.wf_append_out") == "20"
