"""The builder's basemap picker in a real browser (issue 13): offline light and dark (Tessera's own vector
tiles, place labels with collision handling), a custom XYZ template that is not one or whose tiles fail
(the map keeps drawing and the picker says why), the choice saved in the map document and drawn by the
public viewer. Screenshots: test-artifacts/browser/builder-basemap-light.png, builder-basemap-dark.png,
builder-basemap-world.png,
builder-basemap-streets.png, builder-basemap-bad-url.png, builder-basemap-public.png."""

from __future__ import annotations

import urllib.parse

import browser as B
import helpers as h
from test_browser_journey import chrome_ok  # noqa: F401  (fixture)
from test_publishing import publish
from test_workspace_maps import MAPS, dataset, kepler

LABELS_JS = """const el = document.querySelector(arguments[0]);
  const v = el && el.mapview; if (!v || !v.labels || !v.basemap) return null;
  return {kind: el.dataset.basemap, zoom: v.map.getZoom(), labels: v.labels.placed.slice(), loading: v.basemap.isLoading() || !!v.labels._frame,
          layers: [...el.querySelectorAll('.leaflet-pane canvas[data-layers]')].map(c => c.dataset.layers).join(',')};"""


def labels(b, map_css, kind, zoom=None):
    """Waits until the offline basemap in style `kind` (at `zoom`) has drawn its tiles and placed labels."""
    def ready(_):
        s = b.js(LABELS_JS, map_css)
        return s if (s and s["kind"] == kind and not s["loading"] and s["labels"] and "land" in s["layers"]
                     and zoom in (None, s["zoom"])) else False
    return b.wait(ready, 60, f"{kind} basemap labels in {map_css}")


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
        assert streets["zoom"] == 14 and "roads" in streets["layers"], streets
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
