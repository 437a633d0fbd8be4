-- Quadbin spatial index functions for the warehouse, named like CARTO's Analytics Toolbox for PostgreSQL
-- (carto.QUADBIN_*), so existing SQL runs unchanged. A quadbin is a 64-bit cell id: header bit 62,
-- mode 1 in bits 59-62, resolution in bits 52-56, then the tile's x/y in Morton order padded with ones.
-- Applied by `tessera warehouse-migrate` (and to carto_dw by create-admin).
CREATE SCHEMA IF NOT EXISTS carto;

-- Spreads the 32 bits of v over the even bits of a 64-bit value (Morton interleave helper).
CREATE OR REPLACE FUNCTION carto.__quadbin_spread(v bigint) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  v := (v | (v << 16)) & x'0000FFFF0000FFFF'::bigint;
  v := (v | (v << 8)) & x'00FF00FF00FF00FF'::bigint;
  v := (v | (v << 4)) & x'0F0F0F0F0F0F0F0F'::bigint;
  v := (v | (v << 2)) & x'3333333333333333'::bigint;
  RETURN (v | (v << 1)) & x'5555555555555555'::bigint;
END $$;

-- The inverse: gathers the even bits of v into 32 bits.
CREATE OR REPLACE FUNCTION carto.__quadbin_compact(v bigint) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  v := v & x'5555555555555555'::bigint;
  v := (v | (v >> 1)) & x'3333333333333333'::bigint;
  v := (v | (v >> 2)) & x'0F0F0F0F0F0F0F0F'::bigint;
  v := (v | (v >> 4)) & x'00FF00FF00FF00FF'::bigint;
  v := (v | (v >> 8)) & x'0000FFFF0000FFFF'::bigint;
  RETURN (v | (v >> 16)) & x'00000000FFFFFFFF'::bigint;
END $$;

CREATE OR REPLACE FUNCTION carto.quadbin_fromzxy(z int, x bigint, y bigint) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF z < 0 OR z > 26 OR x < 0 OR y < 0 OR x >= (1::bigint << z) OR y >= (1::bigint << z) THEN
    RAISE EXCEPTION 'invalid tile %/%/%', z, x, y USING ERRCODE = '22023';
  END IF;
  RETURN x'4000000000000000'::bigint | x'0800000000000000'::bigint | (z::bigint << 52)
    -- >> is arithmetic on bigint: mask off the sign bits it drags in.
    | (((carto.__quadbin_spread(x << (32 - z)) | (carto.__quadbin_spread(y << (32 - z)) << 1)) >> 12) & x'000FFFFFFFFFFFFF'::bigint)
    | (x'000FFFFFFFFFFFFF'::bigint >> (z * 2));
END $$;

CREATE OR REPLACE FUNCTION carto.quadbin_resolution(quadbin bigint) RETURNS int
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT ((quadbin >> 52) & 31)::int $$;

CREATE OR REPLACE FUNCTION carto.quadbin_tozxy(quadbin bigint, OUT z int, OUT x bigint, OUT y bigint)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE m bigint;
BEGIN
  z := carto.quadbin_resolution(quadbin);
  m := (quadbin & x'000FFFFFFFFFFFFF'::bigint) << 12;
  x := carto.__quadbin_compact(m) >> (32 - z);
  y := carto.__quadbin_compact(m >> 1) >> (32 - z);
END $$;

CREATE OR REPLACE FUNCTION carto.quadbin_toparent(quadbin bigint, resolution int) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE t record;
BEGIN
  t := carto.quadbin_tozxy(quadbin);
  IF resolution < 0 OR resolution > t.z THEN
    RAISE EXCEPTION 'parent resolution % must be between 0 and %', resolution, t.z USING ERRCODE = '22023';
  END IF;
  RETURN carto.quadbin_fromzxy(resolution, t.x >> (t.z - resolution), t.y >> (t.z - resolution));
END $$;

CREATE OR REPLACE FUNCTION carto.quadbin_fromlonglat(longitude float8, latitude float8, resolution int) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE n float8 := (1::bigint << resolution)::float8; lat float8; s float8;
BEGIN
  lat := greatest(-85.05112877980659, least(85.05112877980659, latitude));
  s := sin(radians(lat));
  RETURN carto.quadbin_fromzxy(resolution,
    greatest(0, least(n - 1, floor(n * (longitude / 360.0 + 0.5))))::bigint,
    greatest(0, least(n - 1, floor(n * (0.5 - ln((1 + s) / (1 - s)) / (4 * pi())))))::bigint);
END $$;

-- The cell of a point geometry (any SRID) at a resolution.
CREATE OR REPLACE FUNCTION carto.quadbin_frompoint(point geometry, resolution int) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT carto.quadbin_fromlonglat(ST_X(p), ST_Y(p), resolution)
  FROM (SELECT CASE WHEN ST_SRID(point) IN (0, 4326) THEN point ELSE ST_Transform(point, 4326) END AS p) s
$$;

CREATE OR REPLACE FUNCTION carto.quadbin_boundary(quadbin bigint) RETURNS geometry
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT ST_Transform(ST_TileEnvelope(t.z, t.x::int, t.y::int), 4326) FROM carto.quadbin_tozxy(quadbin) t
$$;

CREATE OR REPLACE FUNCTION carto.quadbin_center(quadbin bigint) RETURNS geometry
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT ST_Centroid(carto.quadbin_boundary(quadbin)) $$;

-- The smallest and largest cells of `resolution` inside a cell: in Morton order they bound a
-- contiguous range, so `col BETWEEN lo AND hi` uses a btree index.
CREATE OR REPLACE FUNCTION carto.__quadbin_children_range(quadbin bigint, resolution int, OUT lo bigint, OUT hi bigint)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE t record; d int;
BEGIN
  t := carto.quadbin_tozxy(quadbin);
  d := resolution - t.z;
  IF d < 0 THEN RAISE EXCEPTION 'children resolution % is below %', resolution, t.z USING ERRCODE = '22023'; END IF;
  lo := carto.quadbin_fromzxy(resolution, t.x << d, t.y << d);
  hi := carto.quadbin_fromzxy(resolution, ((t.x + 1) << d) - 1, ((t.y + 1) << d) - 1);
END $$;
