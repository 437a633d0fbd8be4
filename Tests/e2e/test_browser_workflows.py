"""The Workflows canvas in a real browser (issue 17): build the demo workflow (populated_places → filter
population > 1M → buffer 50 km → spatial join with world_countries → group by country → save_table) from
the palette, connect its ports, run it with per-node badges, preview two nodes and open a result as a
map. Screenshots: test-artifacts/browser/workflows-canvas.png, workflows-run.png, workflows-preview.png,
workflows-map.png."""

from __future__ import annotations

import json
import urllib.parse

import browser as B
import helpers as h
from test_browser_journey import chrome_ok  # noqa: F401  (fixture)
from test_workflows import DEMO_HAND_SQL, places  # noqa: F401  (fixture)

SIZE = (1600, 1000)


def test_build_run_preview_and_map_the_demo_workflow(stack, api, admin, places, chrome_ok):  # noqa: F811
    name = h.unique("Big cities by country")
    wf = h.assert_ok(api.post("/api/v3/workflows", json_body={"name": name, "connection": "carto_dw", "nodes": [], "edges": []},
                              token=admin.token), 201)
    b = B.Browser(f"http://127.0.0.1:{stack.http_port}", SIZE, "workflows")
    try:
        b.open(f"/acc/#/login?next={urllib.parse.quote('/#/workflows/' + wf['id'], safe='')}")
        b.find("input[type=email]").send_keys(stack.admin_email)
        b.find("input[type=password]").send_keys(stack.admin_password, B.Keys.ENTER)
        b.find("#wf-canvas")
        assert b.find("#wf-title").text == name

        def add(type_, **params):
            search = b.find("#wf-search")
            search.clear()
            search.send_keys(type_)
            item = b.find(f".wf-item[data-type='{type_}']")
            item.send_keys(B.Keys.ENTER)  # the palette works from the keyboard
            node = b.find(".wf-node[aria-current]")
            nid = node.get_attribute("data-node")
            for key, value in params.items():
                el = b.find(f"#wf-params [name='{key}']")
                if el.tag_name == "select":
                    B.Select(el).select_by_value(value)
                else:
                    el.clear()
                    el.send_keys(value if isinstance(value, str) else json.dumps(value))
            b.find("#wf-params button[type=submit]").click()
            return nid

        def connect(src, dst, port="in"):
            b.js("arguments[0].click()", b.find(f".wf-out[data-node='{src}']"))
            b.js("arguments[0].click()", b.find(f".wf-in[data-node='{dst}'][data-port='{port}']"))

        places_id = add("table", table="public.populated_places")
        big = add("filter", column="population", operator=">", value="1000000")
        buf = add("buffer", distance="50000")
        countries = add("table", table="public.world_countries")
        sj = add("spatial_join")
        grp = add("group_by", columns="name_2",
                  aggregates=[{"op": "count", "alias": "cities"}, {"column": "population", "op": "sum", "alias": "population"}])
        ren = add("rename", columns={"name_2": "country"})
        save = add("save_table", table="public.wf_browser_out")
        connect(places_id, big)
        connect(big, buf)
        connect(buf, sj, "main")
        connect(countries, sj, "secondary")
        connect(sj, grp)
        connect(grp, ren)
        connect(ren, save)
        b.wait(lambda d: len(b.all(".wf-edges path")) == 7, 10, "seven edges drawn")
        b.shot("workflows-canvas")

        b.find("#wf-run").click()
        b.wait(lambda d: b.find("#wf-status").get_attribute("data-status") in ("success", "failure"), 300, "the run to finish")
        assert b.find("#wf-status").get_attribute("data-status") == "success", b.find("#wf-status").text
        badges = [e.get_attribute("data-status") for e in b.all(".wf-node .badge")]
        assert badges == ["success"] * 8, badges
        b.shot("workflows-run")

        # The saved document is what the canvas built, and its output equals the hand-written SQL.
        saved = h.assert_ok(api.get(f"/api/v3/workflows/{wf['id']}", token=admin.token))
        assert len(saved["nodes"]) == 8 and len(saved["edges"]) == 7
        diff = h.warehouse(stack, f"""
            WITH hand AS ({DEMO_HAND_SQL}), wf AS (SELECT country, cities, population FROM public.wf_browser_out)
            SELECT count(*) FROM ((TABLE hand EXCEPT TABLE wf) UNION ALL (TABLE wf EXCEPT TABLE hand)) d""")
        assert diff == "0"

        # Preview two nodes: rows and (for geometries) a map through the tile layer.
        b.js("arguments[0].click()", b.find(f".wf-node[data-node='{grp}']"))
        b.find("#wf-preview-btn").click()
        b.wait(lambda d: b._visible("#wf-preview table") is not None, 30, "the group-by preview rows")
        assert "cities" in b.find("#wf-preview table thead").text
        b.js("arguments[0].click()", b.find(f".wf-node[data-node='{buf}']"))
        b.find("#wf-preview-btn").click()
        b.find("#wf-preview-map")
        b.tiles_done("wf-preview-map", 60)
        b.shot("workflows-preview")

        # Open the buffers as a Builder map.
        b.find("#wf-open-map").click()
        b.find("#builder-map", timeout=30)
        b.shot("workflows-map")

        # Export as SQL shows the compiled script of every node.
        b.open(f"/#/workflows/{wf['id']}")
        b.find("#wf-export").click()
        script = b.find("#wf-sql").text
        assert all(f"-- {n} (" in script for n in (places_id, big, buf, countries, sj, grp, ren, save)), script
    finally:
        b.quit()
