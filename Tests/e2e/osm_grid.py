"""A small synthetic OSM extract for the routing and isoline tests (and bench/lds): a 5×5 street grid.

Node (i, j) sits at lon = LON0 + i·STEP, lat = LAT0 + j·STEP, near the equator so one step is ≈ 222 m
both ways. Streets, each one OSM way through five nodes (osm2pgrouting splits them at the crossings):
  row 0     primary (fast)
  row 2     living_street (slow)
  row 4     residential, one-way eastward (oneway=yes)
  rows 1, 3 and every column: residential (two-way)
"""

from __future__ import annotations

from pathlib import Path

LON0, LAT0, STEP, N = 10.0, 0.0, 0.002, 5


def node_id(i: int, j: int) -> int:
    return 1 + j * N + i


def coord(i: float, j: float) -> tuple[float, float]:
    """(lon, lat) of grid position (i, j); fractions give points between the crossings."""
    return (round(LON0 + i * STEP, 7), round(LAT0 + j * STEP, 7))


def _ways() -> list[tuple[list[int], dict[str, str]]]:
    ways = []
    row_tags = {0: {"highway": "primary", "name": "Fast Avenue"},
                2: {"highway": "living_street", "name": "Slow Lane"},
                4: {"highway": "residential", "name": "One Way Street", "oneway": "yes"}}
    for j in range(N):
        ways.append(([node_id(i, j) for i in range(N)], row_tags.get(j, {"highway": "residential", "name": f"Row {j}"})))
    for i in range(N):
        ways.append(([node_id(i, j) for j in range(N)], {"highway": "residential", "name": f"Column {i}"}))
    return ways


def write(path: Path) -> Path:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="tessera-tests">']
    lon_max, lat_max = coord(N - 1, N - 1)
    lines.append(f'  <bounds minlat="{LAT0}" minlon="{LON0}" maxlat="{lat_max}" maxlon="{lon_max}"/>')
    for j in range(N):
        for i in range(N):
            lon, lat = coord(i, j)
            lines.append(f'  <node id="{node_id(i, j)}" version="1" lat="{lat}" lon="{lon}"/>')
    for k, (refs, tags) in enumerate(_ways(), start=1):
        lines.append(f'  <way id="{100 + k}" version="1">')
        lines += [f'    <nd ref="{r}"/>' for r in refs]
        lines += [f'    <tag k="{key}" v="{value}"/>' for key, value in tags.items()]
        lines.append('  </way>')
    lines.append('</osm>')
    path.write_text("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":
    import sys

    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "grid.osm")))
