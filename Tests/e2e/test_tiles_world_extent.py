"""Whole-world tables at low zoom: a geographic table whose extent reaches a hair past 180° (world
data often does, and ST_EstimatedExtent rounds outwards) used to get a search box collapsed onto the
antimeridian, because PROJ wraps such a longitude to -180: its z0 tile held only the features that
span the whole width. The basemap (world_countries) showed this."""

from __future__ import annotations

import urllib.parse

import helpers as h
import mvt

TABLE = "public.e2e_world_edge"


def test_z0_tile_has_every_feature_of_a_world_table(stack, api, full_token):
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS {TABLE};
        CREATE TABLE {TABLE} (name text, geom geometry(Polygon, 4326));
        INSERT INTO {TABLE} VALUES
          ('east-edge', ST_MakeEnvelope(170, -90, 180.00001, -80, 4326)),
          ('alps', ST_MakeEnvelope(6, 45, 12, 48, 4326)),
          ('west', ST_MakeEnvelope(-180, 10, -170, 20, 4326));
        """)  # not analysed: the extent comes from ST_Extent, exactly 180.00001
    r = api.get("/api/v3/maps/carto_dw/table", params={"name": TABLE}, token=full_token)
    assert r.status == 200, r
    tj_url = urllib.parse.urlsplit(r.json()["tilejson"]["url"][0])
    r = api.get(f"{tj_url.path}?{tj_url.query}", token=full_token)
    assert r.status == 200, r
    tile = urllib.parse.urlsplit(r.json()["tiles"][0].replace("{z}/{x}/{y}", "0/0/0"))
    r = api.get(f"{tile.path}?{tile.query}", token=full_token)
    assert r.status == 200, r
    names = {f.properties["name"] for layer in mvt.decode(r.body).values() for f in layer.features}
    assert names == {"east-edge", "alps", "west"}
