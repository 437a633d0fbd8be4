"""Trajectory sources as @carto/api-client's trajectoryTableSource / trajectoryQuerySource send them
(`spatialDataType=trajectory`, `trajectoryIdColumn`, `timestampColumn`) and deck.gl's TrajectoryTileLayer
reads them: point tiles carrying the trajectory id and the timestamp as a number, plus the range model on
the timestamp (the source's `timestampRange`). The layer subtracts timestampRange.min from the tiles'
numeric timestamps as they are, so both are epoch milliseconds. Values are checked against plain SQL."""
from __future__ import annotations

import pytest

import helpers as h
from helpers import assert_error, assert_ok
from test_maps_api import CONN, Maps, _cli_token

TABLE = "public.e2e_trips"
TRAJ = {"spatialDataType": "trajectory", "spatialDataColumn": "geom", "trajectoryIdColumn": "trip_id",
        "timestampColumn": "ts", "tileResolution": "0.5"}


@pytest.fixture(scope="module")
def maps(stack):
    m = Maps(stack)
    h.warehouse(stack, f"""
        DROP TABLE IF EXISTS {TABLE};
        CREATE TABLE {TABLE} (trip_id int, ts timestamptz, speed float8, label text, geom geometry(Point, 4326));
        INSERT INTO {TABLE}
        SELECT t, timestamptz '2024-03-01 08:00:00+00' + make_interval(mins => 10 * i + t), 10 * t + i, 'trip ' || t,
               ST_SetSRID(ST_MakePoint(2.10 + 0.01 * i + 0.1 * t, 41.30 + 0.005 * i), 4326)
        FROM generate_series(1, 3) t, generate_series(0, 9) i;
    """)
    return m


def test_table_source_tiles_carry_trajectory_id_and_epoch_ms_timestamps(stack, maps):
    hs = maps.source("table", {"name": TABLE, "columns": "speed", **TRAJ})
    tj = maps.tilejson(hs)
    fields = tj["vector_layers"][0]["fields"]
    assert {"speed", "trip_id", "ts"} <= set(fields)  # id and timestamp are added to the requested columns
    feats = maps.features(tj, 0, 0, 0)
    assert len(feats) == 30
    expected = {}
    for row in h.warehouse(stack, f"SELECT trip_id, (extract(epoch FROM ts) * 1000)::bigint, speed FROM {TABLE}").splitlines():
        trip, epoch, speed = row.split("|")
        expected[(int(trip), int(epoch))] = float(speed)
    got = {(int(f.properties["trip_id"]), int(f.properties["ts"])): f.properties["speed"] for f in feats}
    assert got == expected
    assert all(isinstance(f.properties["ts"], float) for f in feats)  # numeric: no Date parsing in the layer
    assert all("label" not in f.properties for f in feats)


def test_query_source_and_the_timestamp_range_the_client_asks_for(stack, maps):
    hs = maps.source("query", {"q": f"SELECT * FROM {TABLE} WHERE trip_id <> 3", **TRAJ})
    feats = maps.features(maps.tilejson(hs), 0, 0, 0)
    assert sorted({int(f.properties["trip_id"]) for f in feats}) == [1, 2]
    # trajectoryQuerySource then calls widgetSource.getRange({column: timestampColumn}).
    widgets = _cli_token(stack, "*", apis="sql,maps")
    body = assert_ok(maps.api.get(f"/api/v3/sql/{CONN}/model/range", token=widgets, params={
        "type": "query", "source": f"SELECT * FROM {TABLE} WHERE trip_id <> 3", "spatialDataType": "trajectory",
        "spatialDataColumn": "geom", "params": '{"column": "ts"}'}))
    [row] = body["rows"]
    lo, hi = h.warehouse(stack, f"SELECT (extract(epoch FROM min(ts)) * 1000)::bigint, (extract(epoch FROM max(ts)) * 1000)::bigint "
                                f"FROM {TABLE} WHERE trip_id <> 3").split("|")
    assert (row["min"], row["max"]) == (int(lo), int(hi))
    # The same unit as the tiles: the layer's normalisation (ts - min) stays within the trip's duration.
    assert min(int(f.properties["ts"]) for f in feats) == row["min"]
    assert max(int(f.properties["ts"]) for f in feats) == row["max"]


def test_trajectory_bad_input_names_the_parameter(maps):
    for missing in ("trajectoryIdColumn", "timestampColumn"):
        params = {k: v for k, v in TRAJ.items() if k != missing}
        err = assert_error(maps.handshake("table", {"name": TABLE, **params}, maps.star), 400, "missing_parameter")
        assert missing in err["error"]
    err = assert_error(maps.handshake("table", {"name": TABLE, **TRAJ, "trajectoryIdColumn": "nope"}, maps.star), 400)
    assert "trajectoryIdColumn" in err["error"] and "nope" in err["error"]
    err = assert_error(maps.handshake("table", {"name": TABLE, **TRAJ, "spatialDataType": "lines"}, maps.star), 400, "invalid_parameter")
    assert "spatialDataType" in err["error"]
