"""The workspace around the map in a real browser (issue 14), one journey against the whole stack:
the SQL editor runs a 155,210-row query (first page timed in the page with performance.now(); the grid holds
one page, so the tab does not freeze), marks an error where the server says, cancels a running statement
(and the server stops it), saves a query and keeps the history; a builder layer with a category widget's
filter exports as GeoPackage (the file opens with GDAL with the filtered row count); the explorer sorts, searches and pages a table and shows
column statistics; a CSV is previewed and imported; a map is published with a password and opened in a
fresh browser. Screenshots: test-artifacts/browser/workspace-<step>.png. Timings are printed (pytest -s)
and written to test-artifacts/browser/workspace-timings.json."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.parse

import browser as B
import helpers as h
from test_browser_journey import chrome_ok  # noqa: F401  (fixture)
from test_workspace_maps import MAPS, kepler

LARGE_ROWS = 155_210
PAGE_SIZE = 500  # www/workspace/js/sections/sql.js PAGE_SIZE
LARGE_Q = (f"SELECT g AS id, 'row ' || g AS label, g * 0.5 AS value,\n"
           f"       ST_SetSRID(ST_MakePoint((g % 360) - 180, ((g / 360) % 170) - 85), 4326) AS geom\n"
           f"FROM generate_series(1, {LARGE_ROWS}) AS g")
MAP_PASSWORD = "workspace-sesame-14"
# A visible layer of the countries, as the builder's defaultLayer makes it (js/style.js).
LAYER = {"id": "l1", "type": "mvt", "config": {
    "dataId": "d1", "label": "Countries", "isVisible": True, "color": [47, 111, 237], "columns": {}, "textLabel": [],
    "visConfig": {"opacity": 0.85, "filled": True, "stroked": True, "strokeColor": [255, 255, 255], "thickness": 1, "radius": 5}},
    "visualChannels": {"colorField": None, "colorScale": "quantize"}}

# A heartbeat that records the longest gap between timer ticks: a frozen main thread shows up as a long gap.
HEARTBEAT_JS = """
window.__gap = 0; let last = performance.now();
clearInterval(window.__hb);
window.__hb = setInterval(() => { const n = performance.now(); window.__gap = Math.max(window.__gap, n - last); last = n; }, 50);
"""


def set_sql(b: B.Browser, text: str) -> None:
    b.js("document.querySelector('.CodeMirror').CodeMirror.setValue(arguments[0])", text)


def page_bytes(b: B.Browser, url: str) -> bytes:
    """A same-origin GET made by the page itself (its cookie), returned as bytes."""
    data = b.js("""return fetch(arguments[0]).then(r => r.arrayBuffer()).then(buf => {
        let s = ''; const a = new Uint8Array(buf);
        for (let i = 0; i < a.length; i += 0x8000) s += String.fromCharCode.apply(null, a.subarray(i, i + 0x8000));
        return btoa(s); })""", url)
    return base64.b64decode(data)


def login(b: B.Browser, stack, next_hash: str) -> None:
    b.open(f"/acc/#/login?next={urllib.parse.quote('/' + next_hash, safe='')}")
    b.find("input[type=email]").send_keys(stack.admin_email)
    b.find("input[type=password]").send_keys(stack.admin_password, B.Keys.ENTER)


def test_workspace_journey(stack, api, admin, chrome_ok, tmp_path):  # noqa: F811
    base = f"http://127.0.0.1:{stack.http_port}"
    timings: dict[str, float] = {}
    countries = int(h.warehouse(stack, "SELECT count(*) FROM public.world_countries"))
    b = B.Browser(base, B.DESKTOP, "workspace")
    try:
        # ---- 1. the SQL editor: a 155,210-row query, first page timed in the page
        login(b, stack, "#/sql")
        b.find(".CodeMirror")
        set_sql(b, LARGE_Q)
        assert b.all(".CodeMirror .cm-keyword"), "SQL is highlighted"
        b.js(HEARTBEAT_JS)
        b.find("#sql-run").click()
        stats = b.wait(lambda d: (el := b._visible("#sql-stats")) and el.get_attribute("data-first-page-ms") and el, 30, "the first page")
        first_page_ms = float(stats.get_attribute("data-first-page-ms"))
        timings["sql_first_page_ms"] = first_page_ms
        timings["sql_server_ms"] = float(stats.get_attribute("data-server-ms") or "nan")
        assert first_page_ms < 1000, f"first page after {first_page_ms} ms"
        assert len(b.all("table[aria-label=Results] tbody tr")) == PAGE_SIZE, "the grid holds one page, not the result"
        b.wait(lambda d: f"of {LARGE_ROWS:,}" in b.find("#sql-page").text, 60, "the whole result counted")
        timings["sql_longest_main_thread_gap_ms"] = b.js("return window.__gap")
        b.js("document.getElementById('sql-stats').scrollIntoView({block: 'start'})")
        b.shot_both_sizes("workspace-sql-large")  # the phone layout does not scroll sideways
        b.find("#sql-next").click()
        b.wait(lambda d: b.find("#sql-page").text.startswith(f"Rows 501–1,000 of {LARGE_ROWS:,}"), 30, "the second page")
        assert b.find("table[aria-label=Results] tbody tr td.num").text == "501"

        # ---- 2. the schema browser and completion of a table's columns from the explorer API
        set_sql(b, "SELECT * FROM ")
        b.js("const cm = document.querySelector('.CodeMirror').CodeMirror; cm.focus(); cm.setCursor({line: 0, ch: 14});")
        b.find("#sql-tables button[data-fqn='public.world_countries']").click()
        assert b.js("return document.querySelector('.CodeMirror').CodeMirror.getValue()") == "SELECT * FROM public.world_countries"
        set_sql(b, "SELECT  FROM public.world_countries")
        b.js("const cm = document.querySelector('.CodeMirror').CodeMirror; cm.focus(); cm.setCursor({line: 0, ch: 7});"
             "cm.replaceSelection('na'); cm.showHint({completeSingle: false});")
        hints = b.wait(lambda d: [e.text for e in b.all(".CodeMirror-hints li")] or None, 20, "completions")
        assert "name" in hints, hints
        b.shot("workspace-sql-completion")
        b.js("document.querySelector('.CodeMirror').CodeMirror.closeHint && document.querySelector('.CodeMirror').CodeMirror.closeHint()")

        # ---- 3. an error, marked where the server says
        set_sql(b, "SELECT name,\n       nmae\nFROM public.world_countries")
        b.find("#sql-run").click()
        err = b.find("#sql-error")
        assert "nmae" in err.text and "line 2" in err.text, err.text
        assert b.find(".cm-sql-error").text == "nmae"
        b.shot("workspace-sql-error")

        # ---- 4. cancel: the browser aborts, the server stops the statement
        marker = h.unique("ws_cancel")
        set_sql(b, f"SELECT pg_sleep(30) AS {marker}")
        b.find("#sql-run").click()
        b.wait(lambda d: h.active_queries(stack, marker) == 1, 15, "the statement running")
        b.find("#sql-cancel").click()
        b.find("#sql-cancelled")
        h.wait_until(lambda: h.active_queries(stack, marker) == 0, 10)

        # ---- 5. a saved query and the history, then a geometry result on the map
        name = h.unique("Countries")
        set_sql(b, "SELECT name, geom FROM public.world_countries")
        b.find("#sql-run").click()
        b.wait(lambda d: len(b.all("table[aria-label=Results] tbody tr")) == countries, 30, "the countries")
        b.find("#sql-save-name").send_keys(name)
        b.find("#sql-save").click()
        b.wait(lambda d: name in b.find("#sql-saved").text, 20, "the saved query listed")
        b.wait(lambda d: "cancelled" in b.find("#sql-history").text and "error" in b.find("#sql-history").text, 20, "the history")
        b.find("#sql-show-map").click()
        b.tiles_done("sql-map", 60)
        b.js("document.getElementById('sql-map').scrollIntoView({block: 'end'})")
        b.shot("workspace-sql")
        set_sql(b, "SELECT 1")
        b.find("#sql-saved a.item").click()
        assert "world_countries" in b.js("return document.querySelector('.CodeMirror').CodeMirror.getValue()")

        # ---- 6. a builder layer exported as GeoPackage, with its widget's filter applied
        europe = int(h.warehouse(stack, "SELECT count(*) FROM public.world_countries WHERE continent = 'Europe'"))
        assert 0 < europe < countries
        m = h.assert_ok(api.post(MAPS, token=admin.token, json_body={
            "title": h.unique("Export map"), "keplerMapConfig": kepler(layers=[LAYER]),
            "datasets": [{"id": "d1", "type": "table", "source": "public.world_countries", "connectionName": "carto_dw",
                          "geoColumn": "geom", "columns": ["name", "continent"], "format": "tilejson", "queryParameters": None}]}), 201)
        b.open(f"/#/maps/{m['id']}")
        b.find("#add-widget").click()
        dlg = b.find("dialog.modal")
        B.Select(dlg.find_element(B.By.XPATH, ".//label[text()='Type']/following-sibling::select")).select_by_value("category")
        B.Select(dlg.find_element(B.By.XPATH, ".//label[text()='Column']/following-sibling::select")).select_by_value("continent")
        dlg.find_element(B.By.XPATH, ".//button[text()='Add widget']").click()
        b.find(".widget[data-type=category] button.cat[data-category=Europe]").click()
        b.wait(lambda d: b.find(".widget[data-type=category] button.cat[data-category=Europe]").get_attribute("aria-pressed") == "true",
               20, "Europe selected")
        b.find("#layer-list .layer-item").click()
        b.tiles_done("builder-map", 60)
        B.Select(b.find("#layer-export-format")).select_by_value("gpkg")
        started = time.monotonic()
        b.find("#layer-export").click()
        link = b.find("#layer-export-download", timeout=90)
        timings["export_gpkg_s"] = round(time.monotonic() - started, 2)
        b.js("document.getElementById('layer-export-status').scrollIntoView({block: 'end'})")
        b.shot("workspace-export")
        gpkg = tmp_path / "layer.gpkg"
        gpkg.write_bytes(page_bytes(b, link.get_attribute("href")))
        info = subprocess.run(["ogrinfo", "-ro", "-so", "-al", str(gpkg)], capture_output=True, text=True, check=True).stdout
        assert f"Feature Count: {europe}" in info, info  # what the map shows, not the whole table

        # ---- 7. the explorer: sort, search, paging, statistics
        b.open("/#/explorer/carto_dw/public.world_countries")
        b.wait(lambda d: len(b.all("#explorer-rows tbody tr")) == min(50, countries), 30, "the first rows")
        assert "on disk" in b.find("#table-summary").text
        expected_last = h.warehouse(stack, "SELECT name FROM public.world_countries ORDER BY name DESC NULLS LAST LIMIT 1")
        b.find("#explorer-rows th button.sort[data-column=name]").click()
        b.wait(lambda d: b.find("#explorer-rows th[aria-sort=ascending]"), 20, "sorted ascending")
        b.find("#explorer-rows th button.sort[data-column=name]").click()
        b.wait(lambda d: b.find("#explorer-rows th[aria-sort=descending]"), 20, "sorted descending")
        first = b.find("#explorer-rows tbody tr").find_elements(B.By.CSS_SELECTOR, "td")
        names = [c.text for c in first]
        assert expected_last in names, (expected_last, names)
        # The explorer searches every column but the geometry, as text.
        tests = h.warehouse(stack, "SELECT string_agg(format('%I::text ILIKE ''%%land%%''', column_name), ' OR ') "
                                   "FROM information_schema.columns WHERE table_schema = 'public' "
                                   "AND table_name = 'world_countries' AND udt_name <> 'geometry'")
        matches = int(h.warehouse(stack, f"SELECT count(*) FROM public.world_countries WHERE {tests}"))
        assert matches > 0
        b.find("#explorer-search").send_keys("land", B.Keys.ENTER)
        b.wait(lambda d: f"of {matches:,} matching" in b.find("#explorer-page").text, 20, "the search")
        assert all("land" in r.text.lower() for r in b.all("#explorer-rows tbody tr"))
        b.js("document.getElementById('explorer-search').closest('.card').scrollIntoView({block: 'start'})")
        b.shot_both_sizes("workspace-explorer")
        b.find("button.col-stats-button[data-column=pop_est]").click()
        b.wait(lambda d: "Statistics of pop_est" in b.find("#col-stats").text and "max" in b.find("#col-stats").text, 20, "column statistics")
        b.shot("workspace-explorer-stats")

        # ---- 8. a CSV previewed, then imported
        table = h.unique("ws_import")
        csv = tmp_path / f"{table}.csv"
        csv.write_text("name,kind,longitude,latitude\n" + "".join(f"spot {i},k{i % 3},{i * 0.1:.1f},{i * 0.05:.2f}\n" for i in range(40)))
        b.open("/#/imports")
        B.Select(b.find("form[aria-label='New import'] select")).select_by_value("carto_dw")
        b.find("input[type=file]").send_keys(str(csv))
        b.find("#import-preview").click()
        card = b.find("#import-preview-card", timeout=60)
        assert "40 rows" in card.text and "Point" in card.text, card.text
        b.shot("workspace-import-preview")
        b.find("#import-start").click()
        done = b.find("#import-done", timeout=90)
        assert table in done.text and "40 rows" in done.text, done.text

        # ---- 9. publish with a password
        b.open(f"/#/maps/{m['id']}")
        b.find("#share-button").click()
        b.find("#public-toggle").click()
        public_link = b.find("#public-link").get_attribute("value")
        b.find("#map-password").send_keys(MAP_PASSWORD)
        b.find("#set-password").click()
        b.wait(lambda d: "must enter the password" in b.find("#map-password-state").text, 20, "the password set")
        b.shot("workspace-publish")
        b.find("dialog.modal > .actions button").click()
        b.find("#publish-button").click()
        b.wait(lambda d: b.find("#publish-state").text == "Published", 20, "published")
    finally:
        b.quit()

    # A fresh browser (no cookies) gets the password step, then the map.
    v = B.Browser(base, B.DESKTOP, "workspace-viewer")
    try:
        v.open(urllib.parse.urlsplit(public_link).path)
        v.find("#map-password-form")
        assert v.driver.get_cookies() == []
        v.find("#map-password-input").send_keys(MAP_PASSWORD, B.Keys.ENTER)
        assert v.find("#public-title").text == m["title"]
        v.tiles_done("public-map", 60)
        v.shot("workspace-publish-viewer")
    finally:
        v.quit()

    B.ARTIFACTS.joinpath("workspace-timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print("workspace timings:", json.dumps(timings))
