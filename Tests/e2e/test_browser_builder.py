"""The map builder for thematic maps in a real browser (issue 13, points 4-6): a quantile ramp with
5 classes whose legend matches the drawn pixels, labels, an aggregated H3 layer, every widget type
with filtered counts checked against SQL, a SQL parameter control moved (values bound, never in the
SQL), the filters back after a reload, and the public viewer with no cookies drawing the same pixels;
and the basemap picker (point 1): offline light and dark (Tessera's own vector tiles, place labels with
collision handling), a custom XYZ template that is not one or whose tiles fail (the map keeps drawing and
the picker says why), the choice saved in the map document and drawn by the public viewer.
Screenshots: test-artifacts/browser/builder-<step>.png (builder-basemap-light, -dark, -world, -streets,
-helsinki-z11/-z12/-z13, -helsinki-edge-z14, -bad-url, -public among them)."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

import browser as B
import helpers as h
from helpers import assert_error, assert_ok
from test_browser_journey import chrome_ok  # noqa: F401  (fixture)
from test_publishing import publish
from test_workspace_maps import MAPS, dataset, kepler

TABLE = "public.e2e_builder_places"
# Six of fifteen months hold data: the time series must keep the nine empty ones.
MONTHS = [0, 2, 3, 7, 11, 14]
FIXTURE = f"""
DROP TABLE IF EXISTS {TABLE};
CREATE TABLE {TABLE} (cartodb_id int PRIMARY KEY, name text, population int, kind text, founded date,
                      geom geometry(Point, 4326));
INSERT INTO {TABLE}
SELECT i, 'P' || i, ((i * 7919) % 997 + 1) * ((i * 31) % 13 + 1) * 10, chr(97 + i % 5),
       (date '2023-01-01' + make_interval(months => (ARRAY{MONTHS})[1 + i % 6]))::date + (i % 27),
       ST_SetSRID(ST_MakePoint(-9 + (i % 20) * 1.5, 37 + (i / 20) * 1.5), 4326)
FROM generate_series(0, 299) i;
ANALYZE {TABLE};
"""


def sql(stack, text: str) -> list[list[str]]:
    out = h.warehouse(stack, text).strip()
    return [line.split("|") for line in out.splitlines()] if out else []


def close(px, rgb) -> bool:
    return px is not None and px[3] > 200 and all(abs(a - b) <= 2 for a, b in zip(px[:3], rgb))


def hex_rgb(s: str) -> list[int]:
    s = s.lstrip("#")
    return [int(s[i:i + 2], 16) for i in (0, 2, 4)]


def drawn(px) -> bool:
    return px is not None and px[3] > 60


def set_value(b, css: str, value) -> None:
    """Sets an input's value as a user would and fires change (range and number inputs)."""
    b.js("const el = document.querySelector(arguments[0]); el.value = arguments[1];"
         "el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true}));",
         css, str(value))


def select(b, css: str, value: str) -> None:
    """Chooses an option as a user would; retried, because the style editor re-renders after each change."""
    b.wait(lambda d: b.js(
        "const el = document.querySelector(arguments[0]);"
        "if (!el || !el.offsetParent || ![...el.options].some(o => o.value === arguments[1])) return false;"
        "el.value = arguments[1]; el.dispatchEvent(new Event('change', {bubbles: true})); return true;", css, value), 20, f"{css} = {value}")


def click(b, css: str) -> None:
    """find + click, retried when a re-render replaced the element in between."""
    b.wait(lambda d: b.find(css).click() or True, 20, f"click {css}")


def saved(b) -> None:
    b.wait(lambda d: b.find("#save-state").text == "All changes saved", 30, "autosave")


def add_widget(b, kind: str, column: str | None, operation: str = "count") -> None:
    click(b, "#add-widget")
    b.find("dialog.modal #widget-type")
    select(b, "#widget-layer", "d1")
    select(b, "#widget-type", kind)
    if column is not None:
        select(b, "#widget-column", column)
    if operation != "count":
        select(b, "#widget-operation", operation)
    b.find("dialog.modal").find_element(B.By.XPATH, ".//button[text()='Add widget']").click()
    b.wait(lambda d: b.all(f".widget[data-type={kind}]"), 20, f"the {kind} widget")


def widget_loaded(b, kind: str) -> bool:
    cards = b.all(f".widget[data-type={kind}] .widget-body")
    return bool(cards) and "Loading" not in cards[0].text


def filter_sql(filters: dict) -> str:
    """The dataset's filter JSON as plain SQL: the reference the widget counts are checked against."""
    conds = []
    for col, ops in filters.items():
        for op, f in ops.items():
            if op == "in":
                conds.append(f"{col} IN ({', '.join(repr(str(v)) for v in f['values'])})")
            elif op == "between":
                lo, hi = f["values"][0]
                conds.append(f"{col} >= {lo} AND {col} <= {hi}")
            elif op == "closed_open" and col == "founded":
                lo, hi = f["values"][0]
                conds.append(f"{col} >= to_timestamp({lo} / 1000.0) AND {col} < to_timestamp({hi} / 1000.0)")
            elif op == "closed_open":
                lo, hi = f["values"][0]
                conds.append(f"{col} >= {lo} AND {col} < {hi}")
            else:
                raise AssertionError(f"unexpected filter {op}")
    return " AND ".join(conds) or "TRUE"


def view_filters(b, map_id: str = "builder-map") -> dict:
    return b.js(f"return JSON.parse(JSON.stringify(document.getElementById('{map_id}').mapview.filters['d1'] || {{}}))")


def bounds_sql(b, map_id: str) -> str:
    w, s, e, n = b.js(f"const x = document.getElementById('{map_id}').mapview.map.getBounds();"
                      "return [x.getWest(), x.getSouth(), x.getEast(), x.getNorth()];")
    return f"ST_Intersects(geom, ST_MakeEnvelope({max(w, -180)}, {max(s, -85.05)}, {min(e, 180)}, {min(n, 85.05)}, 4326))"


def test_bad_map_parameters_are_refused(stack, api, admin, dw):
    """The map document refuses SQL parameters and queryParameters the builder could not use."""
    bad = [
        ({"name": "1x", "type": "text", "value": ""}, "name"),
        ({"name": "p", "type": "slider", "value": ""}, "type"),
        ({"name": "p", "type": "numeric", "value": ["a", 2]}, "[from, to]"),
        ({"name": "p", "type": "date", "value": ["2020-01-01", "tomorrow"]}, "YYYY-MM-DD"),
    ]
    for param, words in bad:
        doc = kepler()
        doc["config"]["parameters"] = [param]
        err = assert_error(api.post(MAPS, token=admin.token, json_body={"title": "bad", "keplerMapConfig": doc, "datasets": [dataset()]}), 400, "invalid_map")
        assert words in err["error"], err
    d = dataset(type="query", source="SELECT * FROM public.e2e_places WHERE population > $1", queryParameters=[{"x": 1}])
    err = assert_error(api.post(MAPS, token=admin.token, json_body={"title": "bad", "keplerMapConfig": kepler(), "datasets": [d]}), 400, "invalid_map")
    assert "queryParameters" in err["error"]


def test_builder_thematic_map_widgets_parameters_public(stack, api, admin, dw, chrome_ok):  # noqa: F811
    h.warehouse(stack, FIXTURE)
    base = f"http://127.0.0.1:{stack.http_port}"
    title = h.unique("Thematic map")
    m = assert_ok(api.post(MAPS, token=admin.token, json_body={"title": title, "keplerMapConfig": kepler(layers=[]), "datasets": []}), 201)
    map_id = m["id"]

    b = B.Browser(base, B.DESKTOP, "builder")
    try:
        b.open(f"/acc/#/login?next={urllib.parse.quote('/#/maps/' + map_id, safe='')}")
        b.find("input[type=email]").send_keys(stack.admin_email)
        b.find("input[type=password]").send_keys(stack.admin_password, B.Keys.ENTER)
        b.find("#builder-map")

        # ---- a failing query in the add-source dialog: said in place, the dialog and its text stay
        click(b, "#add-layer")
        select(b, "#source-kind", "query")
        broken = f"SELECT * FROM {TABLE} WHERE population > {{{{nope}}}}"
        b.find("#source-sql").send_keys(broken)
        b.find("#add-source-submit").click()
        err = b.find("#add-source-error")
        assert "No parameter named nope" in err.text, err.text
        assert b.find("#source-sql").get_attribute("value") == broken, "the text is kept"
        b.find("#source-sql").clear()
        b.find("#source-sql").send_keys(f"SELEC * FROM {TABLE}")
        b.find("#add-source-submit").click()
        b.wait(lambda d: "cannot be mapped" in b.find("#add-source-error").text, 20, "the SQL error in place")
        assert b.find("#source-sql").get_attribute("value") == f"SELEC * FROM {TABLE}"
        # ... and the same dialog then adds the table
        select(b, "#source-kind", "table")
        b.find("#source-table").send_keys(TABLE)
        b.find("#add-source-submit").click()
        b.find("#layer-list .layer-item[data-layer=l1]")
        b.tiles_done("builder-map")

        # ---- quantiles, 5 classes, a ColorBrewer palette, opacity 1: legend <-> pixels <-> SQL breaks
        select(b, "#color-by", "population")
        b.wait(lambda d: b.all("#color-method"), 20, "the method control")
        assert B.Select(b.find("#color-method")).first_selected_option.get_attribute("value") == "quantile"
        assert b.find("#color-classes").get_attribute("value") == "5"
        select(b, "#color-palette", "YlOrRd")
        set_value(b, "#layer-opacity", 1)
        b.wait(lambda d: len(b.all(".legend .legend-part[data-channel=Fill] .swatch")) == 5, 20, "a 5-class legend")
        b.tiles_done("builder-map")
        legend = [hex_rgb(s.get_attribute("data-color")) for s in b.all(".legend .legend-part[data-channel=Fill] .swatch")]
        assert len({tuple(c) for c in legend}) == 5, legend
        breaks = [float(r[0]) for r in sql(stack, f"SELECT unnest(percentile_disc(ARRAY[0, .2, .4, .6, .8, 1]::float8[]) "
                                                  f"WITHIN GROUP (ORDER BY population::float8)) FROM {TABLE}")]
        assert len(breaks) == 6, breaks

        def klass(x: float) -> int:
            i = 0
            while i < 4 and x >= breaks[i + 1]:
                i += 1
            return i
        probes = sql(stack, f"SELECT cartodb_id, population, ST_Y(geom), ST_X(geom) FROM {TABLE} WHERE cartodb_id IN (21, 47, 88, 133, 170, 204, 251, 266) ORDER BY 1")
        seen = set()
        builder_px = {}
        for cid, pop, lat, lon in probes:
            k = klass(float(pop))
            seen.add(k)
            px = b.pixel("builder-map", "l1", float(lat), float(lon))
            builder_px[cid] = px
            assert close(px, legend[k]), f"feature {cid} (population {pop}, class {k}) drawn {px}, legend says {legend[k]}"
        assert len(seen) >= 3, f"the probes cover several classes: {seen}"

        # ---- bad class input: said in place; the setting is kept and the map still draws
        set_value(b, "#color-classes", 50)
        b.wait(lambda d: "between 2 and 10" in b.find("#color-error").text, 20, "the class-count message")
        assert b.find("#color-classes").get_attribute("value") == "50"
        select(b, "#color-method", "custom")
        set_value(b, "#color-classes", 5)
        b.wait(lambda d: b.all("#custom-breaks"), 20, "the custom breaks field")
        set_value(b, "#custom-breaks", "1000, 500")
        b.wait(lambda d: "need 4 custom breaks" in b.find("#color-error").text, 20, "the custom-breaks message")
        set_value(b, "#custom-breaks", "2000, 5000, 20000, 60000")
        b.wait(lambda d: not b.all("#color-error:not([hidden])"), 20, "custom breaks accepted")
        b.wait(lambda d: "2.0k" in b.find(".legend").text or "2000" in b.find(".legend").text, 20, "the custom breaks in the legend")
        select(b, "#color-method", "jenks")
        b.wait(lambda d: len(b.all(".legend .legend-part[data-channel=Fill] .swatch")) == 5 and not b.all("#color-error:not([hidden])"), 30, "natural breaks")
        select(b, "#color-method", "quantile")
        b.wait(lambda d: [hex_rgb(s.get_attribute("data-color")) for s in b.all(".legend .legend-part[data-channel=Fill] .swatch")] == legend, 20, "the quantile legend back")

        # ---- colour by date: equal periods from the first to the last date, the legend in dates
        select(b, "#color-by", "founded")
        b.wait(lambda d: "2023-01-01 – " in b.find(".legend").text and len(b.all(".legend .legend-part[data-channel=Fill] .swatch")) == 5, 20, "a date legend")
        first, last = sql(stack, f"SELECT min(founded), max(founded) FROM {TABLE}")[0]
        assert f" – {last}" in b.find(".legend").text
        b.tiles_done("builder-map")
        dlegend = [hex_rgb(s.get_attribute("data-color")) for s in b.all(".legend .legend-part[data-channel=Fill] .swatch")]
        t0, t1 = [float(x) for x in sql(stack, f"SELECT extract(epoch FROM min(founded)::timestamp), extract(epoch FROM max(founded)::timestamp) FROM {TABLE}")[0]]
        for cid, t, lat_s, lon_s in sql(stack, f"SELECT cartodb_id, extract(epoch FROM founded::timestamp), ST_Y(geom), ST_X(geom) FROM {TABLE} WHERE cartodb_id IN (21, 88, 170, 266)"):
            k = min(4, int((float(t) - t0) / ((t1 - t0) / 5)))
            px = b.pixel("builder-map", "l1", float(lat_s), float(lon_s))
            assert close(px, dlegend[k]), f"feature {cid} drawn {px}, date class {k} is {dlegend[k]}"
        select(b, "#color-by", "population")
        select(b, "#color-palette", "YlOrRd")
        b.wait(lambda d: [hex_rgb(s.get_attribute("data-color")) for s in b.all(".legend .legend-part[data-channel=Fill] .swatch")] == legend, 20, "the population legend again")

        # ---- size by value and labels (with collision handling) for the screenshot; sizes stay below
        # half the points' spacing so that every probe's centre keeps its own colour
        select(b, "#size-by", "population")
        b.wait(lambda d: b.all("#size-max"), 20, "the size range")
        set_value(b, "#size-min", 3)
        set_value(b, "#size-max", 8)
        b.wait(lambda d: "Size · population" in b.find(".legend").text, 20, "the size legend")
        select(b, "#label-by", "name")
        b.tiles_done("builder-map")
        saved(b)
        b.shot("builder-ramp-labels")

        # ---- an aggregated H3 layer on the Maps API's dynamic H3 aggregation: H3 tiles of a resolution that
        # follows the zoom, cells 2 resolutions finer drawn as hexagons (their boundaries computed in the page)
        for cell in ("85283473fffffff", "820807fffffffff", "8a1fb46622dffff", "81083ffffffffff"):  # a pentagon's neighbourhood too
            want = sql(stack, f"SELECT ST_AsText(carto.h3_boundary('{cell}'::text))")[0][0]
            ring = [[float(v) for v in p.split()] for p in want[want.index("((") + 2:want.index("))")].split(",")]
            got = b.js("return import('/js/h3.js').then(m => m.cellToBoundary(arguments[0]))", cell)
            assert all(min(abs(x - rx) + abs(y - ry) for rx, ry in ring) < 1e-6 for x, y in got), (cell, got, ring)
        click(b, "#add-layer")
        b.find("#source-table").send_keys(TABLE)
        select(b, "#layer-type", "h3")
        set_value(b, "#agg-resolution", 2)
        b.find("#add-source-submit").click()
        b.find("#layer-list .layer-item[data-layer=l2]")
        b.wait(lambda d: len(b.all(".legend .legend-layer")) == 2, 20, "two layers in the legend")
        b.tiles_done("builder-map")
        lat, lon = float(probes[0][2]), float(probes[0][3])
        b.wait(lambda d: drawn(b.pixel("builder-map", "l2", lat, lon)), 20, "a hexagon over a point")
        b.wait(lambda d: len(b.all(".legend .legend-layer")[0].find_elements(B.By.CSS_SELECTOR, ".swatch")) == 5, 20, "the hexbins' 5-class legend")
        assert "Fill · count" in b.all(".legend .legend-layer")[0].text
        hexagons_js = """const e = document.getElementById('builder-map').mapview.entries.get('l2'), z = e.vector._tileZoom, out = {};
            for (const [k, t] of e.vector._cache) if (k.startsWith(z + '/')) for (const f of t.features) out[f.properties.h3] = Number(f.properties.count);
            return [z, out];"""

        def hexagons_match_sql(all_in_view: bool) -> int:
            z, drawn_cells = b.js(hexagons_js)
            res = {int(sql(stack, f"SELECT carto.h3_resolution('{c}'::text)")[0][0]) for c in list(drawn_cells)[:5]}
            assert len(res) == 1, res
            r = res.pop()
            where = "TRUE" if all_in_view else bounds_sql(b, "builder-map")
            want = {c: int(n) for c, n in sql(stack, f"SELECT carto.h3_fromgeogpoint(geom, {r}), count(*) FROM {TABLE} WHERE {where} GROUP BY 1")}
            if all_in_view:
                assert drawn_cells == want, (z, r, len(drawn_cells), len(want))
            else:  # every cell holding a point in view is drawn, each with its whole count
                assert set(want) <= set(drawn_cells), (z, r, set(want) - set(drawn_cells))
                every = {c: int(n) for c, n in sql(stack, f"SELECT carto.h3_fromgeogpoint(geom, {r}), count(*) FROM {TABLE} GROUP BY 1")}
                assert all(every.get(c) == n for c, n in drawn_cells.items()), (z, r)
            assert 1 < len(drawn_cells) < 300, len(drawn_cells)
            return r
        low = hexagons_match_sql(True)  # the whole fixture is in view
        b.shot("builder-aggregated")
        b.js("const v = document.getElementById('builder-map').mapview; v.map.setView([arguments[0], arguments[1]], v.map.getZoom() + 3, {animate: false});", lat, lon)
        b.tiles_done("builder-map")
        b.wait(lambda d: drawn(b.pixel("builder-map", "l2", lat, lon)), 20, "a hexagon over the point, zoomed in")
        high = hexagons_match_sql(False)
        assert high > low, f"the hexagons' resolution follows the zoom: {low} then {high}"
        b.shot("builder-aggregated-zoomed")
        b.js("document.getElementById('builder-map').mapview.fitBounds([-9, 37, 19.5, 58])")
        b.tiles_done("builder-map")
        click(b, "#layer-list .layer-item[data-layer=l2] .toggle-visibility")  # hidden for the rest

        # ---- a grid layer on the Maps API's dynamic aggregation: quadbin tiles and cells per zoom
        for z, x, y in ((0, 0, 0), (4, 8, 5), (13, 4100, 2700)):
            want = sql(stack, f"SELECT lpad(to_hex(carto.quadbin_fromzxy({z}, {x}, {y})), 16, '0')")[0][0]
            got = b.js("return import('/js/quadbin.js').then(m => m.quadbinFromZXY(arguments[0], arguments[1], arguments[2]))", z, x, y)
            assert got == want, (z, x, y, got, want)
        click(b, "#add-layer")
        b.find("#source-table").send_keys(TABLE)
        select(b, "#layer-type", "quadbin")
        set_value(b, "#agg-resolution", 2)
        b.find("#add-source-submit").click()
        b.find("#layer-list .layer-item[data-layer=l3]")
        b.tiles_done("builder-map")
        b.wait(lambda d: drawn(b.pixel("builder-map", "l3", lat, lon)), 20, "a grid cell over a point")
        b.wait(lambda d: len(b.all(".legend .legend-layer")[0].find_elements(B.By.CSS_SELECTOR, ".swatch")) == 5, 20, "the grid's 5-class legend")
        # Every point is in view, so the cells of the tiles on screen count all of them, each once.
        counted = b.js("""const v = document.getElementById('builder-map').mapview, e = v.entries.get('l3'), z = e.vector._tileZoom;
            let n = 0; for (const [k, t] of e.vector._cache) if (k.startsWith(z + '/')) for (const f of t.features) n += Number(f.properties.count);
            return n;""")
        assert counted == 300, counted
        # The classes follow the cells on screen: equal intervals from their smallest to their largest count.
        lows = b.js("return [...document.querySelectorAll('.legend .legend-layer')][0].textContent")
        values = b.js("""const e = document.getElementById('builder-map').mapview.entries.get('l3'), z = e.vector._tileZoom;
            return [...e.vector._cache].filter(([k]) => k.startsWith(z + '/')).flatMap(([, t]) => t.features.map(f => Number(f.properties.count)));""")
        assert f"{min(values)} – " in lows and f" – {max(values)}" in lows, (lows, min(values), max(values))
        b.shot("builder-grid")
        click(b, "#layer-list .layer-item[data-layer=l3] .toggle-visibility")
        click(b, "#layer-list .layer-item[data-layer=l1] button.name")

        # ---- every widget type
        add_widget(b, "formula", None)
        add_widget(b, "category", "kind")
        add_widget(b, "pie", "kind")
        add_widget(b, "histogram", "population")
        add_widget(b, "range", "population")
        add_widget(b, "timeseries", "founded")
        add_widget(b, "table", None)
        for kind in ("formula", "category", "pie", "histogram", "range", "timeseries", "table"):
            b.wait(lambda d, k=kind: widget_loaded(b, k), 30, f"{kind} loaded")
        in_view = bounds_sql(b, "builder-map")
        total = int(sql(stack, f"SELECT count(*) FROM {TABLE} WHERE {in_view}")[0][0])
        assert b.find(".widget[data-type=formula] .formula-value").get_attribute("data-value") == str(total)
        # The time series keeps its empty months: 15 bars, 6 with data.
        bars = b.js("return [...document.querySelectorAll('.widget[data-type=timeseries] .bars button')].map(x => x.dataset.value)")
        assert len(bars) == 15, bars
        assert sum(1 for x in bars if x != "0") == len(MONTHS), bars
        # Play steps through the months, filtering the map; stop and clear.
        click(b, ".widget[data-type=timeseries] button.play")
        b.wait(lambda d: "closed_open" in json.dumps(view_filters(b)), 20, "the animation filtering a month")
        # (the cards re-render with every frame: clicked through the page, not a held element)
        b.wait(lambda d: b.js("const p = document.querySelector('.widget[data-type=timeseries] button.play');"
                              "if (!p || p.textContent !== '■') return false; p.click(); return true;"), 20, "the stop button")
        b.wait(lambda d: "closed_open" not in json.dumps(view_filters(b)), 20, "stopping shows all times again")
        # Subtitles name the right columns.
        subtitles = b.js("return Object.fromEntries([...document.querySelectorAll('.widget')].map(w => [w.dataset.type, w.querySelector('.widget-subtitle').textContent]))")
        assert subtitles["category"] == "count by kind" and subtitles["histogram"] == "count by population", subtitles
        assert subtitles["pie"] == "count by kind" and subtitles["range"] == "range of population", subtitles

        # Category, histogram brush (three bins) and range combine.
        click(b, ".widget[data-type=category] button.cat[data-category=a]")
        b.wait(lambda d: "in" in view_filters(b).get("kind", {}), 20, "the category filter")
        b.wait(lambda d: widget_loaded(b, "histogram") and b.all(".widget[data-type=histogram] .bars button[data-bin='0']"), 20, "histogram")
        click(b, ".widget[data-type=histogram] .bars button[data-bin='0']")
        b.wait(lambda d: b.all(".widget[data-type=histogram] .bars button[data-bin='0'][aria-pressed=true]"), 20, "bin 0 brushed")
        b.wait(lambda d: B.ActionChains(b.driver).key_down(B.Keys.SHIFT).click(b.find(".widget[data-type=histogram] .bars button[data-bin='2']"))
               .key_up(B.Keys.SHIFT).perform() or True, 20, "shift-click bin 2")
        b.wait(lambda d: len(b.all(".widget[data-type=histogram] .bars button[aria-pressed=true]")) == 3, 20, "three bins brushed")
        lo, hi = [float(x) for x in sql(stack, f"SELECT min(population), max(population) FROM {TABLE}")[0]]
        set_value(b, ".widget[data-type=range] .range-low", lo + (hi - lo) * 0.05)
        b.wait(lambda d: set(view_filters(b).get("population", {})) == {"closed_open", "between"}, 20, "brush and range on population")
        f = view_filters(b)
        assert "in" in f["kind"], f
        # Category, brush and range combine (AND); every count is checked against the same filter in SQL.
        for kind in ("formula", "table", "category", "pie"):
            b.wait(lambda d, k=kind: widget_loaded(b, k), 30, f"{kind} reloaded")
        b.tiles_done("builder-map")
        f = view_filters(b)
        where = filter_sql(f)
        expected = int(sql(stack, f"SELECT count(*) FROM {TABLE} WHERE {where} AND {in_view}")[0][0])
        assert 0 < expected < total
        b.wait(lambda d: b.find(".widget[data-type=formula] .formula-value").get_attribute("data-value") == str(expected), 20,
               f"formula = SQL count {expected}")
        b.wait(lambda d: b.find(".widget[data-type=table] .table-total").get_attribute("data-total") == str(expected), 20, "table total = SQL")
        # The category widget is not filtered by its own selection: its counts are the other filters' rows.
        others = {k: v for k, v in f.items() if k != "kind"}
        per_kind = dict(sql(stack, f"SELECT kind, count(*) FROM {TABLE} WHERE {filter_sql(others)} AND {in_view} GROUP BY 1"))
        b.wait(lambda d: b.find(".widget[data-type=category] button.cat[data-category=b]").get_attribute("data-value") == per_kind["b"], 20, "category counts = SQL")
        pie_js = ("return Object.fromEntries([...document.querySelectorAll('.widget[data-type=pie] .pie-legend button')]"
                  ".map(x => [x.dataset.category, x.dataset.value]))")
        b.wait(lambda d: b.js(pie_js) == {"a": str(expected)}, 20, f"the pie = {{a: {expected}}}: {b.js(pie_js)}")
        # The table pages and sorts.
        click(b, ".widget[data-type=table] th button[data-sort=population]")
        b.wait(lambda d: "▲" in b.find(".widget[data-type=table] th button[data-sort=population]").text, 20, "sorted")
        smallest = sql(stack, f"SELECT population FROM {TABLE} WHERE {where} AND {in_view} ORDER BY population LIMIT 1")[0][0]
        b.wait(lambda d: b.find(".widget[data-type=table] tbody tr td:nth-child(3)").text.replace(",", "") == smallest
               if b.all(".widget[data-type=table] tbody tr") else False, 20, "the smallest population first")
        saved(b)
        b.tiles_done("builder-map")
        filtered_px = {cid: b.pixel("builder-map", "l1", float(lat), float(lon)) for cid, _, lat, lon in probes}
        assert any(drawn(px) for px in filtered_px.values()) and not all(drawn(px) for px in filtered_px.values()), filtered_px
        b.shot("builder-widgets")

        # ---- a SQL parameter (numeric range) bound to {{min_pop_from}} / {{min_pop_to}} in a query layer
        click(b, "#add-parameter")
        b.find("#parameter-name").send_keys("min_pop")
        select(b, "#parameter-type", "numeric")
        b.find("#parameter-default").send_keys("0, 100000")
        b.find("#parameter-bounds").send_keys("0, 100000")
        b.find("#parameter-submit").click()
        b.find(".parameter[data-parameter=min_pop]")
        click(b, "#add-layer")
        select(b, "#source-kind", "query")
        b.find("#source-sql").send_keys(f"SELECT cartodb_id, name, population, geom FROM {TABLE} "
                                        "WHERE population BETWEEN {{min_pop_from}} AND {{min_pop_to}}")
        b.find("#add-source-submit").click()
        b.find("#layer-list .layer-item[data-layer=l4]")
        saved(b)
        doc = assert_ok(api.get(f"{MAPS}/{map_id}", token=admin.token))
        q = next(d for d in doc["datasets"] if d["id"] == "d4")
        assert "$1::numeric" in q["source"] and "$2::numeric" in q["source"] and "100000" not in q["source"], q["source"]
        assert q["queryParameters"] == ["0", "100000"]
        # Move it: the same SQL, new bound values, fewer features drawn.
        cut = 20000
        frm = b.find(".parameter[data-parameter=min_pop] .param-from")
        frm.clear()
        frm.send_keys("abc", B.Keys.TAB)
        b.wait(lambda d: "must be numbers" in b.find(".parameter[data-parameter=min_pop] .parameter-error").text, 20, "the wrong-type message")
        frm = b.find(".parameter[data-parameter=min_pop] .param-from")
        assert frm.get_attribute("value") == "abc", "what was typed stays"
        frm.clear()
        frm.send_keys(str(cut), B.Keys.TAB)
        b.wait(lambda d: not b.all(".parameter[data-parameter=min_pop] .parameter-error:not([hidden])"), 20, "accepted")
        saved(b)

        def stored_d4():
            doc = assert_ok(api.get(f"{MAPS}/{map_id}", token=admin.token))
            return next(d for d in doc["datasets"] if d["id"] == "d4")
        b.wait(lambda d: stored_d4()["queryParameters"][0] == str(cut), 20, "the new value saved")
        q2 = stored_d4()
        assert q2["source"] == q["source"], "the SQL text never changes with the value"
        assert q2["queryParameters"] == [str(cut), "100000"]
        b.tiles_done("builder-map")
        small = sql(stack, f"SELECT ST_Y(geom), ST_X(geom) FROM {TABLE} WHERE population < {cut} ORDER BY cartodb_id LIMIT 1")[0]
        big = sql(stack, f"SELECT ST_Y(geom), ST_X(geom) FROM {TABLE} WHERE population BETWEEN {cut} AND 100000 ORDER BY cartodb_id LIMIT 1")[0]
        b.wait(lambda d: not drawn(b.pixel("builder-map", "l4", float(small[0]), float(small[1]))), 20, "below the parameter: not drawn")
        assert drawn(b.pixel("builder-map", "l4", float(big[0]), float(big[1]))), "inside the parameter's range: drawn"
        # The query layer is editable; a failing edit is explained in place and the text stays.
        click(b, "#layer-list .layer-item[data-layer=l4] button.name")
        editor = b.find("#query-editor")
        good = editor.get_attribute("value")
        assert "{{min_pop_from}}" in good
        editor.send_keys(" AND nonsense_column > 1")
        click(b, "#run-query")
        b.wait(lambda d: "failed" in b.find("#query-error").text, 20, "the SQL error in place")
        assert b.find("#query-editor").get_attribute("value").endswith("nonsense_column > 1"), "the text is kept"
        b.find("#query-editor").clear()
        b.find("#query-editor").send_keys(good)
        click(b, "#run-query")
        b.wait(lambda d: not b.all("#query-error:not([hidden])") and b.all("#query-editor"), 20, "the query runs again")
        # The query layer goes under the thematic one: its points show where the widgets filtered those out.
        for _ in range(3):
            click(b, "#layer-list button[aria-label='Move Query 4 down']")
        saved(b)
        b.shot("builder-parameter")

        # ---- reload: the same filters, parameter and counts
        b.driver.refresh()
        b.find("#builder-map")
        b.wait(lambda d: widget_loaded(b, "formula"), 30, "widgets after reload")
        assert view_filters(b) == f, (view_filters(b), f)
        b.wait(lambda d: b.find(".widget[data-type=formula] .formula-value").get_attribute("data-value") == str(expected), 20, "the same count after reload")
        b.wait(lambda d: b.find(".widget[data-type=category] button.cat[data-category=a]").get_attribute("aria-pressed") == "true", 20, "a still selected")
        assert b.find(".parameter[data-parameter=min_pop] .param-from").get_attribute("value") == str(cut)
        b.tiles_done("builder-map")
        reload_px = {cid: b.pixel("builder-map", "l1", float(lat), float(lon)) for cid, _, lat, lon in probes}
        for cid in reload_px:
            assert drawn(reload_px[cid]) == drawn(filtered_px[cid]), (cid, reload_px[cid], filtered_px[cid])
        view = b.js("const m = document.getElementById('builder-map').mapview.map; const c = m.getCenter(); return [c.lat, c.lng, m.getZoom()]")
        b.shot("builder-reload")
        # The table is linked to the map: a row's click centres the map on its feature.
        b.wait(lambda d: widget_loaded(b, "table") and b.all(".widget[data-type=table] tbody tr"), 20, "table rows")
        row_id = b.js("return document.querySelector('.widget[data-type=table] tbody tr td').textContent").replace(",", "")
        click(b, ".widget[data-type=table] tbody tr")
        ry, rx = [float(v) for v in sql(stack, f"SELECT ST_Y(geom), ST_X(geom) FROM {TABLE} WHERE cartodb_id = {int(row_id)}")[0]]
        b.wait(lambda d: b.js("const c = document.getElementById('builder-map').mapview.map.getCenter(); return [c.lat, c.lng]") is not None and
               all(abs(a - e) < 1e-3 for a, e in zip(b.js("const c = document.getElementById('builder-map').mapview.map.getCenter(); return [c.lat, c.lng]"), (ry, rx))),
               20, f"the map centred on row {row_id}")

        # ---- share it publicly
        b.find("#share-button").click()
        b.find("#public-toggle").click()
        public = b.find("#public-link").get_attribute("value")
        b.find("dialog.modal .actions button").click()
    finally:
        b.quit()

    # ---- the public viewer, no cookies: same filters, same parameter, same pixels
    v = B.Browser(base, B.DESKTOP, "builder-public")
    try:
        v.open(urllib.parse.urlsplit(public).path + "?lock=1")
        assert v.find("#public-title").text == title
        assert v.driver.get_cookies() == []
        v.js("const m = document.getElementById('public-map').mapview.map; m.setView([arguments[0], arguments[1]], arguments[2], {animate: false});", *view)
        v.tiles_done("public-map")
        v.wait(lambda d: widget_loaded(v, "formula"), 30, "public widgets")
        assert view_filters(v, "public-map") == f
        v.wait(lambda d: v.find(".widget[data-type=formula] .formula-value").get_attribute("data-value") == str(expected), 20, "the same count in public")
        for cid, lat_s, lon_s in ((p[0], p[2], p[3]) for p in probes):
            px = v.pixel("public-map", "l1", float(lat_s), float(lon_s))
            ref = reload_px[cid]
            assert drawn(px) == drawn(ref), (cid, px, ref)
            if drawn(ref):
                assert close(px, ref[:3]), f"feature {cid}: public {px} vs builder {ref}"
        assert v.find(".parameter[data-parameter=min_pop] .param-from").get_attribute("value") == str(cut)
        assert not drawn(v.pixel("public-map", "l4", float(small[0]), float(small[1])))
        v.shot("builder-public")
    finally:
        v.quit()


def test_label_column_that_does_not_exist(stack, api, admin, dw, chrome_ok):  # noqa: F811
    """A saved label column the data lacks is named in place; the layer still draws."""
    h.warehouse(stack, FIXTURE)
    layer = {"id": "l1", "type": "mvt", "config": {"dataId": "d1", "label": "places", "isVisible": True, "color": [200, 30, 30],
             "columns": {}, "textLabel": [{"field": {"name": "no_such_column", "type": "string"}, "size": 12}],
             "visConfig": {"opacity": 1, "radius": 5, "classes": 5}}, "visualChannels": {"colorField": None}}
    m = assert_ok(api.post(MAPS, token=admin.token, json_body={
        "title": h.unique("Labels"), "keplerMapConfig": kepler(layers=[layer]),
        "datasets": [dataset(TABLE, columns=["name", "population"])]}), 201)
    b = B.Browser(f"http://127.0.0.1:{stack.http_port}", B.DESKTOP, "builder-label")
    try:
        b.open(f"/acc/#/login?next={urllib.parse.quote('/#/maps/' + m['id'], safe='')}")
        b.find("input[type=email]").send_keys(stack.admin_email)
        b.find("input[type=password]").send_keys(stack.admin_password, B.Keys.ENTER)
        b.wait(lambda d: "no_such_column" in b.find("#label-error").text, 30, "the missing label column named")
        b.tiles_done("builder-map")
        lat, lon = [float(x) for x in sql(stack, f"SELECT ST_Y(geom), ST_X(geom) FROM {TABLE} WHERE cartodb_id = 21")[0]]
        assert close(b.pixel("builder-map", "l1", lat, lon), [200, 30, 30]), "the layer still draws"
    finally:
        b.quit()


def test_click_popup_shows_columns_without_tooltip_fields(stack, api, admin, dw, chrome_ok):  # noqa: F811
    """No tooltip fields chosen: a click on a feature still opens a popup with its columns (read from the
    SQL API, since the lean tiles carry only the style's columns), never an empty box; and the same in
    the public viewer, with the map's own token."""
    h.warehouse(stack, FIXTURE)
    layer = {"id": "l1", "type": "mvt", "config": {"dataId": "d1", "label": "places", "isVisible": True, "color": [200, 30, 30],
             "columns": {}, "textLabel": [], "visConfig": {"opacity": 1, "radius": 6, "classes": 5}}, "visualChannels": {"colorField": None}}
    m = assert_ok(api.post(MAPS, token=admin.token, json_body={
        "title": h.unique("Popup"), "keplerMapConfig": kepler(layers=[layer]),
        "datasets": [dataset(TABLE, columns=["name", "population", "kind", "founded"])]}), 201)
    name, pop, kind, lat, lon = sql(stack, f"SELECT name, population, kind, ST_Y(geom), ST_X(geom) FROM {TABLE} WHERE cartodb_id = 21")[0]

    def click_point(b, map_id: str) -> None:
        b.tiles_done(map_id)
        b.wait(lambda d: drawn(b.pixel(map_id, "l1", float(lat), float(lon))), 20, "the point drawn")
        b.pointer_until(map_id, float(lat), float(lon), lambda: b.all(".leaflet-popup-content"), "a popup on the point", click=True)

    def popup(b) -> dict:
        def ready(_):
            boxes = b.all(".leaflet-popup-content")
            if not boxes or "Loading" in boxes[0].text:
                return False
            return b.js("return Object.fromEntries([...document.querySelectorAll('.leaflet-popup-content dt')].map(dt => [dt.textContent, dt.nextElementSibling.textContent]))")
        return b.wait(ready, 30, "the popup's columns")

    b = B.Browser(f"http://127.0.0.1:{stack.http_port}", B.DESKTOP, "builder-popup")
    try:
        b.open(f"/acc/#/login?next={urllib.parse.quote('/#/maps/' + m['id'], safe='')}")
        b.find("input[type=email]").send_keys(stack.admin_email)
        b.find("input[type=password]").send_keys(stack.admin_password, B.Keys.ENTER)
        b.find("#builder-map")
        b.js("document.getElementById('builder-map').mapview.map.setView([arguments[0], arguments[1]], 7, {animate: false})", float(lat), float(lon))
        click_point(b, "builder-map")
        shown = popup(b)
        assert shown.get("cartodb_id") == "21" and shown.get("name") == name and shown.get("kind") == kind, shown
        assert "geom" not in shown and len(shown) <= 10, shown
        b.shot("builder-popup")
        b.find("#share-button").click()
        b.find("#public-toggle").click()
        public = b.find("#public-link").get_attribute("value")
        b.find("dialog.modal .actions button").click()
    finally:
        b.quit()
    v = B.Browser(f"http://127.0.0.1:{stack.http_port}", B.DESKTOP, "builder-popup-public")
    try:
        v.open(urllib.parse.urlsplit(public).path)
        v.find("#public-map")
        v.js("document.getElementById('public-map').mapview.map.setView([arguments[0], arguments[1]], 7, {animate: false})", float(lat), float(lon))
        click_point(v, "public-map")
        assert popup(v).get("name") == name
    finally:
        v.quit()


LABELS_JS = """const el = document.querySelector(arguments[0]);
  const v = el && el.mapview; if (!v || !v.labels || !v.basemap) return null;
  return {kind: el.dataset.basemap, zoom: v.map.getZoom(), labels: v.labels.placed.slice(), loading: v.basemap.isLoading() || !!v.labels._frame,
          countries: (v.labels.countries || []).slice(),
          streets: (v.labels.streets || []).slice(), boxes: (v.labels.labelBoxes || []).slice(),
          layers: [...el.querySelectorAll('.leaflet-pane canvas[data-layers]')].map(c => c.dataset.layers).join(',')};"""


def assert_no_collisions(labels):
    """No two labels (places, countries, street names glyph by glyph) overlap on the screen."""
    for i, a in enumerate(labels):
        for other in labels[i + 1:]:
            for p in a["boxes"]:
                for q in other["boxes"]:
                    overlap = p[0] < q[2] and q[0] < p[2] and p[1] < q[3] and q[1] < p[3]
                    assert not overlap, f"{a['kind']} {a['name']!r} {p} overlaps {other['kind']} {other['name']!r} {q}"


def labels(b, map_css, kind, zoom=None):
    """Waits until the offline basemap in style `kind` (at `zoom`) has drawn its tiles and placed labels."""
    def ready(_):
        s = b.js(LABELS_JS, map_css)
        return s if (s and s["kind"] == kind and not s["loading"] and s["labels"] and "land" in s["layers"]
                     and zoom in (None, s["zoom"])) else False
    return b.wait(ready, 60, f"{kind} basemap labels in {map_css}")


# The basemap's tile canvases read across the OpenStreetMap extract's edge (the pinned extract's box): at 119
# points per side, the pixel `d` px inside the box and the one `d` px outside, each classed as the style's water
# or land colour (roads, shores and labels are neither and are skipped). Returns the runs of points where water
# meets land across the edge (unbroken by a point where both sides agree), with their length along the edge in px.
EDGE_JS = """const [x0, y0, x1, y1, d] = arguments;
  const v = document.getElementById('builder-map').mapview, map = v.map, z = map.getZoom(), pal = v.basemap.options.palette;
  const rgb = c => [1, 3, 5].map(i => parseInt(c.slice(i, i + 2), 16));
  const water = rgb(pal.water), land = rgb(pal.land);
  const near = (px, c) => Math.abs(px[0] - c[0]) + Math.abs(px[1] - c[1]) + Math.abs(px[2] - c[2]) < 12;
  const kind = p => {
    const tx = Math.floor(p.x / 256), ty = Math.floor(p.y / 256);
    const c = document.querySelector(`#builder-map canvas[data-tile="${z}/${tx}/${ty}"]`);
    if (!c) return null;
    const r = c.width / 256;
    const px = c.getContext('2d').getImageData(Math.floor((p.x - tx * 256) * r), Math.floor((p.y - ty * 256) * r), 1, 1).data;
    return near(px, water) ? 'water' : near(px, land) ? 'land' : null;
  };
  const nw = map.project([y1, x0], z), se = map.project([y0, x1], z);
  const sides = [[f => [nw.x + f * (se.x - nw.x), nw.y], [0, -1], se.x - nw.x], [f => [nw.x + f * (se.x - nw.x), se.y], [0, 1], se.x - nw.x],
                 [f => [nw.x, nw.y + f * (se.y - nw.y)], [-1, 0], se.y - nw.y], [f => [se.x, nw.y + f * (se.y - nw.y)], [1, 0], se.y - nw.y]];
  const out = {compared: 0, runs: []};
  for (const [at, [ox, oy], length] of sides) {
    let run = null;
    for (let i = 1; i < 120; i++) {
      const [x, y] = at(i / 120);
      const a = kind({x: x - d * ox, y: y - d * oy}), b = kind({x: x + d * ox, y: y + d * oy});
      if (a && b) out.compared++;
      if (a && b && a !== b) {
        if (!run) out.runs.push(run = {at: [Math.round(x), Math.round(y)], inside: a, px: 0});
        run.px += length / 120;
      } else if (a && b) run = null;
    }
  }
  return out;"""


def assert_no_seam_at_extract(b, zoom):
    """The extract's box is no shore on screen: water never meets land along its edge (issue 13). A few pixels
    are the water's own shape near the edge (a harbour basin ends 11 m from it: 3.5 px long, a pixel off it at
    z12); the box's shore was straight runs of 8 and 13 px at z12, 26 and 52 px at z14."""
    from test_basemap import EXTRACT
    edge = b.js(EDGE_JS, *EXTRACT, 1.5)
    assert edge["compared"] > 100, f"z{zoom}: too few edge pixels read as land or water: {edge}"
    long = [r for r in edge["runs"] if r["px"] >= 6]
    assert not long, f"z{zoom}: water meets land along the extract's edge: {long}"


def test_basemaps(stack, api, admin, dw, chrome_ok, reference_basemap):  # noqa: F811
    k = kepler(layers=[])
    k["config"]["mapState"] = {"latitude": 60.19, "longitude": 24.93, "zoom": 10}
    m = h.assert_ok(api.post(MAPS, token=admin.token, json_body={
        "title": h.unique("Basemaps"), "keplerMapConfig": k, "datasets": [dataset()]}), 201)
    base = f"http://127.0.0.1:{stack.http_port}"
    b = B.Browser(base, B.DESKTOP, "basemap")
    try:
        b.open(f"/acc/#/login?next={urllib.parse.quote('/#/maps/' + m['id'], safe='')}")
        b.find("input[type=email]").send_keys(stack.admin_email)
        b.find("input[type=password]").send_keys(stack.admin_password, B.Keys.ENTER)
        b.find("#builder-map")

        # Offline light (the default for a new map): labels at z10, most populous first.
        light = labels(b, "#builder-map", "light", 10)
        assert light["zoom"] == 10 and "Helsinki" in light["labels"], light
        assert "roads" in light["layers"] and "places" in light["layers"], light["layers"]
        attribution = b.find(".leaflet-control-attribution").text
        assert "GeoNames" in attribution and "OpenStreetMap" in attribution, attribution
        b.shot("builder-basemap-light")
        # The whole world at z2: the crude/low bands, the most populous cities labelled.
        b.js("document.getElementById('builder-map').mapview.map.setView([30, 10], 2)")
        world = labels(b, "#builder-map", "light", 2)
        assert len(world["labels"]) >= 5, world
        b.shot("builder-basemap-world")
        # Europe at z3: country names (DCW) before the cities, none overlapping.
        b.js("document.getElementById('builder-map').mapview.map.setView([52, 15], 3)")
        europe = labels(b, "#builder-map", "light", 3)
        assert len(europe["countries"]) >= 5 and {"France", "Germany", "Poland"} & set(europe["countries"]), europe["countries"]
        assert "countries" in europe["layers"], europe["layers"]
        b.shot("builder-basemap-europe-z3")
        # Helsinki at z12: the main roads' names (OpenStreetMap; the extract covers 1 x 1.6 km of the centre).
        b.js("document.getElementById('builder-map').mapview.map.setView([60.1715, 24.9425], 12)")
        main = labels(b, "#builder-map", "light", 12)
        assert main["streets"], f"main roads named at z12: {main}"
        assert_no_collisions(main["boxes"])
        assert_no_seam_at_extract(b, 12)
        b.shot("builder-basemap-helsinki-z12")
        # z13: the longer streets named along their lines, in smaller type, none over another label or a place's
        # (the extract is 107 x 175 px: about five names are shorter than their streets, some under place names).
        b.js("document.getElementById('builder-map').mapview.map.setView([60.1715, 24.9425], 13)")
        city = labels(b, "#builder-map", "light", 13)
        assert len(city["streets"]) >= 3 and len(city["streets"]) > len(main["streets"]), city["streets"]
        assert_no_collisions(city["boxes"])
        assert {b_["kind"] for b_ in city["boxes"]} >= {"place", "street"}, "place and street labels side by side"
        assert_no_seam_at_extract(b, 13)
        b.shot("builder-basemap-helsinki-z13")
        # z11 (GSHHG's shore, the streets already drawn) and z14 over the bay's rounded ends by the extract's north edge.
        b.js("document.getElementById('builder-map').mapview.map.setView([60.1715, 24.9425], 11)")
        labels(b, "#builder-map", "light", 11)
        b.shot("builder-basemap-helsinki-z11")
        b.js("document.getElementById('builder-map').mapview.map.setView([60.1755, 24.9470], 14)")
        labels(b, "#builder-map", "light", 14)
        assert_no_seam_at_extract(b, 14)
        b.shot("builder-basemap-helsinki-edge-z14")
        b.js("document.getElementById('builder-map').mapview.map.setView([60.19, 24.93], 10)")
        labels(b, "#builder-map", "light", 10)

        # Offline dark.
        B.Select(b.find("#basemap-select")).select_by_visible_text("Offline dark")
        dark = labels(b, "#builder-map", "dark")
        assert "Helsinki" in dark["labels"], dark
        b.shot("builder-basemap-dark")

        # Streets of the demo city (OpenStreetMap, Helsinki) from z12.
        b.js("document.getElementById('builder-map').mapview.map.setView([60.1675, 24.9425], 14)")
        streets = labels(b, "#builder-map", "dark", 14)
        assert streets["zoom"] == 14 and "roads" in streets["layers"] and len(streets["streets"]) >= 3, streets["streets"]
        assert len(streets["streets"]) > len(city["streets"]), "more street names at z14 than at z13"
        assert_no_collisions(streets["boxes"])
        b.shot("builder-basemap-streets")
        b.js("document.getElementById('builder-map').mapview.map.setView([60.19, 24.93], 10)")
        labels(b, "#builder-map", "dark", 10)

        # A custom URL that is not an XYZ template: refused in place, nothing saved.
        B.Select(b.find("#basemap-select")).select_by_value("custom")
        url = b.find("#basemap-url")
        url.send_keys("https://tiles.example.org/world.png")
        b.find("#basemap-apply").click()
        b.wait(lambda d: "Not an XYZ template" in b.find("#basemap-error").text, 20, "the not-a-template message")
        # A template whose tiles answer errors (nginx 404s here): the offline basemap is drawn instead, and why.
        url.clear()
        url.send_keys(f"{base}/no-such-tiles/{{z}}/{{x}}/{{y}}.png")
        b.find("#basemap-apply").click()
        b.wait(lambda d: "answers errors" in b.find("#basemap-error").text, 30, "the failing-tiles message")
        assert labels(b, "#builder-map", "light")["labels"], "the map still draws"
        assert "GeoNames" in b.find(".leaflet-control-attribution").text, "the offline basemap's attribution"
        b.shot("builder-basemap-bad-url")

        # Back to dark: saved in the map document (keplerMapConfig.config.mapStyle).
        B.Select(b.find("#basemap-select")).select_by_visible_text("Offline dark")
        labels(b, "#builder-map", "dark")
        b.wait(lambda d: h.assert_ok(api.get(f"{MAPS}/{m['id']}", token=admin.token))["keplerMapConfig"]["config"]
               ["mapStyle"].get("styleType") == "tessera-dark", 20, "the basemap saved with the map")
        b.driver.refresh()
        labels(b, "#builder-map", "dark")
        assert b.find("#basemap-select").get_attribute("value") == "tessera-dark"
    finally:
        b.quit()

    # The public viewer (no cookies, the map's own token) draws the same basemap.
    h.assert_ok(api.patch(f"{MAPS}/{m['id']}", token=admin.token, json_body={"privacy": "public"}))
    h.assert_ok(publish(api, admin, m))
    v = B.Browser(base, B.DESKTOP, "basemap-public")
    try:
        v.open(f"/map/{m['id']}")
        public = labels(v, "#public-map", "dark")
        assert "Helsinki" in public["labels"], public
        v.shot("builder-basemap-public")
    finally:
        v.quit()


DENSE = "public.e2e_builder_dense"


def test_dense_points_lean_thinned_tiles(stack, api, admin, dw, chrome_ok):  # noqa: F811
    """A dense point layer sized by a numeric column asks for lean tiles thinned by that column: the
    handshake carries `columns` (only what the style, labels and tooltips use) and `thinningOrder`, the
    tiles hold only those properties, and at a low zoom the legend says features are hidden and which kept."""
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS {DENSE};
        CREATE TABLE {DENSE} (cartodb_id int PRIMARY KEY, name text, population int, kind text, geom geometry(Point, 4326));
        INSERT INTO {DENSE} SELECT i, 'D' || i, (i * 7919) % 100003, chr(97 + i % 3),
               ST_SetSRID(ST_MakePoint(-10 + (i % 200) * 0.2, 36 + (i / 200) * 0.16), 4326)
        FROM generate_series(0, 29999) i;
        ANALYZE {DENSE};""")
    layer = {"id": "l1", "type": "mvt", "config": {"dataId": "d1", "label": "dense", "isVisible": True, "color": [200, 30, 30],
             "columns": {}, "textLabel": [{"field": {"name": "name", "type": "string"}, "size": 12}],
             "visConfig": {"opacity": 1, "radius": 4, "classes": 5, "sizeRange": [2, 8],
                           "colorRange": {"name": "YlOrRd", "type": "sequential"}}},
             "visualChannels": {"colorField": {"name": "kind", "type": "string"}, "colorScale": "ordinal",
                                "sizeField": {"name": "population", "type": "real"}}}
    k = kepler(layers=[layer])
    k["config"]["mapState"] = {"latitude": 48, "longitude": 10, "zoom": 3}
    m = assert_ok(api.post(MAPS, token=admin.token, json_body={
        "title": h.unique("Dense"), "keplerMapConfig": k, "datasets": [dataset(DENSE, columns=["name", "population", "kind"])]}), 201)
    b = B.Browser(f"http://127.0.0.1:{stack.http_port}", B.DESKTOP, "builder-dense")
    try:
        b.open(f"/acc/#/login?next={urllib.parse.quote('/#/maps/' + m['id'], safe='')}")
        b.find("input[type=email]").send_keys(stack.admin_email)
        b.find("input[type=password]").send_keys(stack.admin_password, B.Keys.ENTER)
        b.find("#builder-map")
        b.tiles_done("builder-map")
        note = b.wait(lambda d: b.all(".legend .legend-thinned") and b.find(".legend .legend-thinned").text, 30, "the thinned note")
        assert "features hidden" in note and "highest population kept" in note, note
        handshakes = b.js("return performance.getEntriesByType('resource').map(e => e.name)"
                          ".filter(n => n.includes('/maps/carto_dw/table?') && n.includes('e2e_builder_dense'))")
        assert handshakes, "the layer's handshake"
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(handshakes[-1]).query)
        assert q["columns"] == ["kind,name,population"], q
        assert q["thinningOrder"] == ["population:desc"], q
        props = b.js("""const e = document.getElementById('builder-map').mapview.entries.get('l1'); const keys = new Set();
            for (const t of e.vector._cache.values()) for (const f of t.features) Object.keys(f.properties).forEach(k => keys.add(k));
            return [...keys].sort();""")
        # (and the feature id the server adds for CARTO's clients; cartodb_id, not used, stays home)
        assert props == ["_carto_feature_id", "kind", "name", "population"], props
        b.shot("builder-thinned")
        # Zoomed in where no tile is dense: no note.
        b.js("document.getElementById('builder-map').mapview.map.setView([40, -5], 12)")
        b.tiles_done("builder-map")
        b.wait(lambda d: not b.all(".legend .legend-thinned"), 20, "no note when nothing is dropped")
    finally:
        b.quit()


def test_heatmap_and_clusters(stack, api, admin, dw, chrome_ok):  # noqa: F811
    """Heatmap and cluster layers for point data on the Maps API's dynamic aggregation (quadbin cells with
    a count): the heatmap draws a smooth surface, the clusters circles whose counts add up to the SQL count
    of the points in view; both have a legend. Screenshots: builder-heatmap.png, builder-clusters.png."""
    h.warehouse(stack, FIXTURE)
    m = assert_ok(api.post(MAPS, token=admin.token, json_body={"title": h.unique("Heat"), "keplerMapConfig": kepler(layers=[]), "datasets": []}), 201)
    b = B.Browser(f"http://127.0.0.1:{stack.http_port}", B.DESKTOP, "builder-heat")
    try:
        b.open(f"/acc/#/login?next={urllib.parse.quote('/#/maps/' + m['id'], safe='')}")
        b.find("input[type=email]").send_keys(stack.admin_email)
        b.find("input[type=password]").send_keys(stack.admin_password, B.Keys.ENTER)
        b.find("#builder-map")
        probes = sql(stack, f"SELECT ST_Y(geom), ST_X(geom) FROM {TABLE} WHERE cartodb_id IN (21, 133, 266) ORDER BY cartodb_id")

        click(b, "#add-layer")
        b.find("#source-table").send_keys(TABLE)
        select(b, "#layer-type", "heatmap")
        b.find("#add-source-submit").click()
        b.find("#layer-list .layer-item[data-layer=l1]")
        b.tiles_done("builder-map")
        for lat, lon in probes:
            b.wait(lambda d, la=lat, lo=lon: drawn(b.pixel("builder-map", "l1", float(la), float(lo))), 20, f"heat over {lat},{lon}")
        b.wait(lambda d: "Heat · point density" in b.find(".legend").text and len(b.all(".legend .legend-part[data-channel=Heat] .swatch")) == 5,
               20, "the heatmap's legend: the ramp, sparse to dense")
        # Read in one script: the legend re-renders when the tiles' values move the classes.
        ramp = [hex_rgb(c) for c in b.js("return [...document.querySelectorAll('.legend .legend-part[data-channel=Heat] .swatch')].map(x => x.dataset.color)")]
        for lat, lon in probes:  # the surface is painted with the legend's colours
            px = b.pixel("builder-map", "l1", float(lat), float(lon))
            assert any(all(abs(a - c) <= 8 for a, c in zip(px[:3], rgb)) for rgb in ramp), (px, ramp)
        # A surface, not squares: between two neighbouring points (1.5° apart) the heat is drawn too.
        lat, lon = float(probes[0][0]), float(probes[0][1])
        assert drawn(b.pixel("builder-map", "l1", lat + 0.75, lon)), "the heat is smooth between points"
        b.shot("builder-heatmap")
        click(b, "#layer-list .layer-item[data-layer=l1] .toggle-visibility")

        click(b, "#add-layer")
        b.find("#source-table").send_keys(TABLE)
        select(b, "#layer-type", "cluster")
        b.find("#add-source-submit").click()
        b.find("#layer-list .layer-item[data-layer=l2]")
        b.tiles_done("builder-map")
        b.wait(lambda d: "Fill · count" in b.find(".legend").text, 20, "the clusters' legend")
        counts = b.js("""const v = document.getElementById('builder-map').mapview, e = v.entries.get('l2'), z = e.vector._tileZoom;
            const b = v.map.getBounds(); let n = 0, cells = 0;
            for (const [k, t] of e.vector._cache) if (k.startsWith(z + '/')) for (const f of t.features) { n += Number(f.properties.count); cells++; }
            return [n, cells];""")
        in_view = int(sql(stack, f"SELECT count(*) FROM {TABLE} WHERE {bounds_sql(b, 'builder-map')}")[0][0])
        assert counts[0] == in_view == 300, (counts, in_view)
        assert 1 < counts[1] < 300, f"points grouped into clusters: {counts}"
        # A circle is drawn at the centre of a cell that holds points.
        clat, clon = b.js("""const v = document.getElementById('builder-map').mapview, e = v.entries.get('l2'), z = e.vector._tileZoom;
            for (const [k, t] of e.vector._cache) { const [tz, tx, ty] = k.split('/').map(Number); if (tz !== z) continue;
              for (const f of t.features) { if (!(Number(f.properties.count) > 0)) continue;
                const xs = f.geometry[0].map(p => p[0]), ys = f.geometry[0].map(p => p[1]);
                const px = tx * 256 + (Math.min(...xs) + Math.max(...xs)) / 2 * t.scale, py = ty * 256 + (Math.min(...ys) + Math.max(...ys)) / 2 * t.scale;
                const ll = v.map.unproject([px, py], z); if (v.map.getBounds().contains(ll)) return [ll.lat, ll.lng]; } }
            return null;""")
        b.wait(lambda d: drawn(b.pixel("builder-map", "l2", clat, clon)), 20, "a cluster circle")
        saved(b)
        b.shot("builder-clusters")
        doc = assert_ok(api.get(f"{MAPS}/{m['id']}", token=admin.token))
        kinds = [layer["config"]["aggregated"] for layer in doc["keplerMapConfig"]["config"]["visState"]["layers"]]
        assert sorted(kinds) == ["cluster", "heatmap"], kinds
    finally:
        b.quit()
