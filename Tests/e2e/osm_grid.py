"""A small synthetic OSM extract for the routing and isoline tests (and bench/lds-isolines): a street grid,
5×5 by default.

Node (i, j) sits at lon = LON0 + i·STEP, lat = LAT0 + j·STEP, near the equator so one step is ≈ 222 m
both ways. Streets, each one OSM way across the grid (osm2pgrouting splits them at the crossings):
  row 0 (and every 10th)      primary (fast)
  row 2 (and every 10th)      living_street (slow)
  the last row                residential, one-way eastward (oneway=yes)
  other rows, every column    residential (two-way)
Larger grids (bench) repeat the pattern; the tests use the 5×5 one.
"""

from __future__ import annotations

from pathlib import Path

LON0, LAT0, STEP, N = 10.0, 0.0, 0.002, 5


def node_id(i: int, j: int, n: int = N) -> int:
    return 1 + j * n + i


def coord(i: float, j: float) -> tuple[float, float]:
    """(lon, lat) of grid position (i, j); fractions give points between the crossings."""
    return (round(LON0 + i * STEP, 7), round(LAT0 + j * STEP, 7))


def _row_tags(j: int, n: int) -> dict[str, str]:
    if j == n - 1:
        return {"highway": "residential", "name": "One Way Street", "oneway": "yes"}
    if j % 10 == 0:
        return {"highway": "primary", "name": f"Fast Avenue {j}"}
    if j % 10 == 2:
        return {"highway": "living_street", "name": f"Slow Lane {j}"}
    return {"highway": "residential", "name": f"Row {j}"}


def _ways(n: int) -> list[tuple[list[int], dict[str, str]]]:
    ways = [([node_id(i, j, n) for i in range(n)], _row_tags(j, n)) for j in range(n)]
    ways += [([node_id(i, j, n) for j in range(n)], {"highway": "residential", "name": f"Column {i}"}) for i in range(n)]
    return ways


def write(path: Path, n: int = N) -> Path:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="tessera-tests">']
    lon_max, lat_max = coord(n - 1, n - 1)
    lines.append(f'  <bounds minlat="{LAT0}" minlon="{LON0}" maxlat="{lat_max}" maxlon="{lon_max}"/>')
    for j in range(n):
        for i in range(n):
            lon, lat = coord(i, j)
            lines.append(f'  <node id="{node_id(i, j, n)}" version="1" lat="{lat}" lon="{lon}"/>')
    for k, (refs, tags) in enumerate(_ways(n), start=1):
        lines.append(f'  <way id="{100 + k}" version="1">')
        lines += [f'    <nd ref="{r}"/>' for r in refs]
        lines += [f'    <tag k="{key}" v="{value}"/>' for key, value in tags.items()]
        lines.append('  </way>')
    lines.append('</osm>')
    path.write_text("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":
    import sys

    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "grid.osm"), int(sys.argv[2]) if len(sys.argv) > 2 else N))
