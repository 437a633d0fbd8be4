"""The offline reference basemap (issue 13): schema basemap in carto_dw (packaging/basemap), served by
maps-api as multi-layer vector tiles under /api/v3/maps/{connection}/basemap and cached like a tileset."""

from __future__ import annotations

import urllib.parse

import helpers as h
import mvt

HELSINKI = (24.9384, 60.1699)
CASPIAN = (50.5, 42.0)  # a lake in GSHHG (level 2): the `water` layer


def template(api, token) -> str:
    tj = h.assert_ok(api.get("/api/v3/maps/carto_dw/basemap", token=token))
    assert tj["tilejson"] == "3.0.0" and {l["id"] for l in tj["vector_layers"]} >= {"land", "water", "coast", "places"}
    # The attribution the sources' licences require.
    for words in ("GSHHG", "DCW", "GeoNames", "CC BY 4.0", "OpenStreetMap", "ODbL"):
        assert words in tj["attribution"], tj["attribution"]
    u = urllib.parse.urlsplit(tj["tiles"][0])
    assert "v=" in u.query, "the data version is in the URL, so a reload changes every tile URL"
    return f"{u.path}?{u.query}"


def tile(api, token, tpl, z, lonlat) -> dict[str, mvt.Layer]:
    x, y = mvt.tile_of(*lonlat, z)
    r = api.get(tpl.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y)), token=token)
    assert r.status == 200, (z, x, y, r)
    assert r.header("Content-Type") == "application/vnd.mapbox-vector-tile"
    return mvt.decode(r.body)


def test_basemap_tiles_z0_to_z12_have_land_water_coast_and_labels(api, full_token, reference_basemap):
    tpl = template(api, full_token)
    for z in range(0, 13):
        layers = tile(api, full_token, tpl, z, HELSINKI)
        assert {"land", "coast", "places"} <= set(layers), (z, sorted(layers))
        assert "water" in tile(api, full_token, tpl, z, CASPIAN), z
        places = layers["places"].features
        # Ranked by population: the tile's labels are its most populous places, biggest first.
        populations = [f.properties["population"] for f in places]
        assert populations == sorted(populations, reverse=True) and len(places) >= 1, z
        if z >= 3:
            assert "Helsinki" in {f.properties["name"] for f in places}, z
    z10 = tile(api, full_token, tpl, 10, HELSINKI)
    assert len(z10["places"].features) >= 3, "place labels at z10"
    assert "boundaries" in tile(api, full_token, tpl, 5, (28.0, 61.0)), "the Finland-Russia border at z5"
    streets = tile(api, full_token, tpl, 12, HELSINKI)
    assert "roads" in streets and len(streets["roads"].features) > 20, "Helsinki's streets at z12"
    assert any(f.properties.get("name") for f in streets["roads"].features)
    assert "roads" not in tile(api, full_token, tpl, 8, HELSINKI), "no streets below z10"


def test_country_labels_and_state_borders_beyond_the_americas(api, full_token, reference_basemap):
    """DCW (gmt-dcw): country labels at z1-z5, the largest first and only large countries at low zooms;
    state borders (level 2) of Russia, China, India and Australia, which GSHHG lacks."""
    tpl = template(api, full_token)
    for z in (1, 3, 5):
        names = {f.properties["name"]: f.properties["area_km2"] for f in tile(api, full_token, tpl, z, (10.0, 51.0))["countries"].features}
        assert "Germany" in names, (z, names)
        if z == 1:
            assert min(names.values()) >= 300000, names
    assert "countries" not in tile(api, full_token, tpl, 7, (10.0, 51.0)), "no country labels past z5"
    for where in ((38.0, 55.0), (78.0, 23.0), (145.0, -35.0), (110.0, 32.0)):  # Russia, India, Australia, China
        borders = tile(api, full_token, tpl, 5, where)["boundaries"].features
        assert any(f.properties["level"] == 2 for f in borders), f"state borders at {where}"


def test_low_zoom_tiles_are_generalised(api, full_token, reference_basemap):
    """Each zoom band uses its own GSHHG resolution: the z1 tile is far lighter than the z7 tile of the same coast."""
    tpl = template(api, full_token)
    x1, y1 = mvt.tile_of(*HELSINKI, 1)
    low = api.get(tpl.replace("{z}/{x}/{y}", f"1/{x1}/{y1}"), token=full_token)
    x7, y7 = mvt.tile_of(*HELSINKI, 7)
    high = api.get(tpl.replace("{z}/{x}/{y}", f"7/{x7}/{y7}"), token=full_token)
    vertices = lambda r: sum(len(ring) for f in mvt.decode(r.body)["coast"].features for ring in f.geometry)
    assert vertices(low) < vertices(high), (vertices(low), vertices(high))


def test_basemap_tiles_are_cached_and_authorised(api, full_token, make_token, reference_basemap):
    tpl = template(api, full_token)
    path = tpl.replace("{z}/{x}/{y}", "4/9/4")
    first, second = api.get(path, token=full_token), api.get(path, token=full_token)
    assert first.status == 200 and "max-age=31536000" in first.header("Cache-Control")
    assert second.status == 200 and second.header("X-Cache") == "HIT", second.headers
    # A map's own token carries the grant basemap.*; a token granted only another table may not draw it.
    granted = make_token(["basemap.*"], allowed_apis=["maps"])["token"]
    assert api.get(path, token=granted).status == 200
    other = make_token(["public.world_countries"], allowed_apis=["maps"])["token"]
    h.assert_error(api.get(path, token=other), 403, "source_not_granted")
    h.assert_error(api.get("/api/v3/maps/carto_dw/basemap", token=other), 403, "source_not_granted")
    assert api.get(path).status == 401


def test_basemap_bad_tile_coordinates(api, full_token, reference_basemap):
    tpl = template(api, full_token)
    for zxy in ("99/0/0", "2/4/0", "a/0/0"):
        h.assert_error(api.get(tpl.replace("{z}/{x}/{y}", zxy), token=full_token), 400, "invalid_tile")
