-- parameters: ["\u0000cells","\u0000cells"]
CREATE TABLE carto."tessera_thin_k_1" AS
WITH _k6 AS MATERIALIZED (
  SELECT tid, _h, cx, cy, geom FROM (
    SELECT _q.*, row_number() OVER (PARTITION BY cx, cy ORDER BY _h, tid) AS _r FROM (
      SELECT _p.tid, _p.geom, hashfloat8extended(_p._x, 0) # hashfloat8extended(_p._y, 1) AS _h,
             floor((_p._x + 180) / 360 * $1::float8)::int8 AS cx, floor((1 - asinh(tan(radians(greatest(-85.0511, least(85.0511, _p._y))))) / pi()) / 2 * $2::float8)::int8 AS cy
      FROM (SELECT _src.ctid AS tid, _src."geom"::geometry AS geom, ST_XMin(_src."geom"::geometry) AS _x, ST_YMin(_src."geom"::geometry) AS _y
            FROM "public"."places" AS _src WHERE _src."geom" IS NOT NULL OFFSET 0) AS _p
    ) AS _q WHERE _q.cx IS NOT NULL AND _q.cy IS NOT NULL
  ) AS _s WHERE _r <= 3),
_k5 AS MATERIALIZED (
  SELECT tid, _h, cx, cy FROM (
    SELECT _k.*, row_number() OVER (PARTITION BY cx >> 1, cy >> 1 ORDER BY _h, tid) AS _r
    FROM (SELECT tid, _h, cx, cy FROM _k6) AS _k
  ) AS _s WHERE _r <= 3),
_k4 AS MATERIALIZED (
  SELECT tid, _h, cx, cy FROM (
    SELECT _k.*, row_number() OVER (PARTITION BY cx >> 2, cy >> 2 ORDER BY _h, tid) AS _r
    FROM (SELECT tid, _h, cx, cy FROM _k5) AS _k
  ) AS _s WHERE _r <= 3),
_k3 AS MATERIALIZED (
  SELECT tid, _h, cx, cy FROM (
    SELECT _k.*, row_number() OVER (PARTITION BY cx >> 3, cy >> 3 ORDER BY _h, tid) AS _r
    FROM (SELECT tid, _h, cx, cy FROM _k4) AS _k
  ) AS _s WHERE _r <= 3),
_k2 AS MATERIALIZED (
  SELECT tid, _h, cx, cy FROM (
    SELECT _k.*, row_number() OVER (PARTITION BY cx >> 4, cy >> 4 ORDER BY _h, tid) AS _r
    FROM (SELECT tid, _h, cx, cy FROM _k3) AS _k
  ) AS _s WHERE _r <= 3),
_k1 AS MATERIALIZED (
  SELECT tid, _h, cx, cy FROM (
    SELECT _k.*, row_number() OVER (PARTITION BY cx >> 5, cy >> 5 ORDER BY _h, tid) AS _r
    FROM (SELECT tid, _h, cx, cy FROM _k2) AS _k
  ) AS _s WHERE _r <= 3),
_k0 AS MATERIALIZED (
  SELECT tid, _h, cx, cy FROM (
    SELECT _k.*, row_number() OVER (PARTITION BY cx >> 6, cy >> 6 ORDER BY _h, tid) AS _r
    FROM (SELECT tid, _h, cx, cy FROM _k1) AS _k
  ) AS _s WHERE _r <= 3)
SELECT _k.tid, _k.geom, _k.cx::int AS cx, _k.cy::int AS cy, coalesce(_m.z, 6)::smallint AS __minz
FROM _k6 AS _k LEFT JOIN (
  SELECT tid, min(z) AS z FROM (SELECT tid, 0 AS z FROM _k0 UNION ALL SELECT tid, 1 AS z FROM _k1 UNION ALL SELECT tid, 2 AS z FROM _k2 UNION ALL SELECT tid, 3 AS z FROM _k3 UNION ALL SELECT tid, 4 AS z FROM _k4 UNION ALL SELECT tid, 5 AS z FROM _k5) AS _u GROUP BY tid
) AS _m ON _m.tid = _k.tid
