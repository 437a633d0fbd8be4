"""A small, independent Mapbox Vector Tile (spec 2.1) decoder for the e2e suite: standard library only,
written from the spec (vector_tile.proto + the geometry command encoding), not from the server's code.

    layers = decode(tile_bytes)                    # {name: Layer}
    layer.features[0].properties                  # {"name": "Madrid", ...}
    layer.features[0].geometry                    # tile-local coordinates, y pointing down
    to_lonlat(z, x, y, extent, px, py)            # tile-local -> WGS84

Also tile arithmetic helpers (lon/lat -> tile, tile-local pixel position) used to predict tile content.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

GEOM_TYPES = {0: "UNKNOWN", 1: "POINT", 2: "LINESTRING", 3: "POLYGON"}


class DecodeError(ValueError):
    pass


# --------------------------------------------------------------------------------------------
# protobuf wire format


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise DecodeError("varint too long")


def _fields(buf: bytes):
    """Yields (field number, wire type, value) where value is an int (varint/fixed) or bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise DecodeError("truncated fixed64")
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise DecodeError("truncated length-delimited field")
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise DecodeError("truncated fixed32")
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise DecodeError(f"unsupported wire type {wire}")
        yield number, wire, value


def _packed_uint32(value: bytes | int, wire: int) -> list[int]:
    if wire == 0:  # a single unpacked element
        return [value]  # type: ignore[list-item]
    out, pos = [], 0
    while pos < len(value):  # type: ignore[arg-type]
        n, pos = _varint(value, pos)  # type: ignore[arg-type]
        out.append(n)
    return out


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _signed64(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


# --------------------------------------------------------------------------------------------
# MVT messages


@dataclass
class Feature:
    id: int | None
    type: str
    properties: dict[str, Any]
    geometry: list[list[tuple[int, int]]]  # parts (points / line strings / rings), tile-local

    @property
    def points(self) -> list[tuple[int, int]]:
        return [p for part in self.geometry for p in part]


@dataclass
class Layer:
    name: str
    version: int
    extent: int
    features: list[Feature] = field(default_factory=list)


def _value(buf: bytes) -> Any:
    out: Any = None
    for number, wire, v in _fields(buf):
        if number == 1:
            out = v.decode("utf-8")
        elif number == 2:
            out = struct.unpack("<f", v)[0]
        elif number == 3:
            out = struct.unpack("<d", v)[0]
        elif number == 4:
            out = _signed64(v)
        elif number == 5:
            out = v
        elif number == 6:
            out = _zigzag(v)
        elif number == 7:
            out = bool(v)
    return out


def _geometry(commands: list[int]) -> list[list[tuple[int, int]]]:
    parts: list[list[tuple[int, int]]] = []
    x = y = 0
    i = 0
    while i < len(commands):
        cmd, count = commands[i] & 7, commands[i] >> 3
        i += 1
        if cmd == 1:  # MoveTo: starts a new part per point
            for _ in range(count):
                x += _zigzag(commands[i])
                y += _zigzag(commands[i + 1])
                i += 2
                parts.append([(x, y)])
        elif cmd == 2:  # LineTo
            if not parts:
                raise DecodeError("LineTo before MoveTo")
            for _ in range(count):
                x += _zigzag(commands[i])
                y += _zigzag(commands[i + 1])
                i += 2
                parts[-1].append((x, y))
        elif cmd == 7:  # ClosePath
            if not parts:
                raise DecodeError("ClosePath before MoveTo")
            parts[-1].append(parts[-1][0])
        else:
            raise DecodeError(f"unknown geometry command {cmd}")
    return parts


def _layer(buf: bytes) -> Layer:
    name, version, extent = "", 1, 4096
    keys: list[str] = []
    values: list[Any] = []
    raw_features: list[bytes] = []
    for number, wire, v in _fields(buf):
        if number == 1:
            name = v.decode("utf-8")
        elif number == 2:
            raw_features.append(v)
        elif number == 3:
            keys.append(v.decode("utf-8"))
        elif number == 4:
            values.append(_value(v))
        elif number == 5:
            extent = v
        elif number == 15:
            version = v
    layer = Layer(name, version, extent)
    for raw in raw_features:
        fid, gtype, tags, commands = None, 0, [], []
        for number, wire, v in _fields(raw):
            if number == 1:
                fid = v
            elif number == 2:
                tags += _packed_uint32(v, wire)
            elif number == 3:
                gtype = v
            elif number == 4:
                commands += _packed_uint32(v, wire)
        if len(tags) % 2:
            raise DecodeError("odd number of tags")
        props = {keys[tags[k]]: values[tags[k + 1]] for k in range(0, len(tags), 2)}
        layer.features.append(Feature(fid, GEOM_TYPES.get(gtype, "UNKNOWN"), props, _geometry(commands)))
    return layer


def decode(data: bytes) -> dict[str, Layer]:
    layers: dict[str, Layer] = {}
    for number, wire, v in _fields(data):
        if number == 3 and wire == 2:
            layer = _layer(v)
            if layer.name in layers:
                raise DecodeError(f"duplicate layer {layer.name}")
            layers[layer.name] = layer
    return layers


# --------------------------------------------------------------------------------------------
# tile arithmetic (spherical Web Mercator, XYZ scheme)


def lonlat_to_world(lon: float, lat: float) -> tuple[float, float]:
    """Fraction of the world (0..1, y down) of a WGS84 position."""
    s = math.sin(math.radians(lat))
    return (lon + 180.0) / 360.0, 0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    wx, wy = lonlat_to_world(lon, lat)
    n = 1 << z
    return min(n - 1, int(wx * n)), min(n - 1, int(wy * n))


def tile_pixel(lon: float, lat: float, z: int, x: int, y: int, extent: int) -> tuple[float, float]:
    """Tile-local position of a WGS84 position (may lie outside 0..extent)."""
    wx, wy = lonlat_to_world(lon, lat)
    n = 1 << z
    return (wx * n - x) * extent, (wy * n - y) * extent


def to_lonlat(z: int, x: int, y: int, extent: int, px: float, py: float) -> tuple[float, float]:
    n = 1 << z
    wx, wy = (x + px / extent) / n, (y + py / extent) / n
    lon = wx * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * wy))))
    return lon, lat
