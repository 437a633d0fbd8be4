-- parameters: ["\u0000cells","\u0000cells"]
CREATE TABLE carto."tessera_thin_k_2" WITH (parallel_workers = 0) AS
WITH _k6 AS MATERIALIZED (
  SELECT * FROM (
    SELECT _q.*, row_number() OVER (PARTITION BY __cx, __cy ORDER BY "pop" DESC NULLS LAST, __h, __tid) AS __r FROM (
      SELECT _p.*, hashfloat8extended(_p.__x, 0) # hashfloat8extended(_p.__y, 1) AS __h, floor((_p.__x + 180) / 360 * $1::float8)::int8 AS __cx, floor((1 - asinh(tan(radians(greatest(-85.0511, least(85.0511, _p.__y))))) / pi()) / 2 * $2::float8)::int8 AS __cy
      FROM (SELECT _src.*, _src.ctid AS __tid, ST_XMin(_src."geom"::geometry) AS __x, ST_YMin(_src."geom"::geometry) AS __y
            FROM "public"."places" AS _src WHERE _src."geom" IS NOT NULL OFFSET 0) AS _p
    ) AS _q WHERE _q.__cx IS NOT NULL AND _q.__cy IS NOT NULL
  ) AS _s WHERE __r <= 3),
_k5 AS MATERIALIZED (
  SELECT __tid, "pop", __h, __cx, __cy FROM (
    SELECT _k.*, row_number() OVER (PARTITION BY __cx >> 1, __cy >> 1 ORDER BY "pop" DESC NULLS LAST, __h, __tid) AS __r
    FROM (SELECT __tid, "pop", __h, __cx, __cy FROM _k6) AS _k
  ) AS _s WHERE __r <= 3),
_k4 AS MATERIALIZED (
  SELECT __tid, "pop", __h, __cx, __cy FROM (
    SELECT _k.*, row_number() OVER (PARTITION BY __cx >> 2, __cy >> 2 ORDER BY "pop" DESC NULLS LAST, __h, __tid) AS __r
    FROM (SELECT __tid, "pop", __h, __cx, __cy FROM _k5) AS _k
  ) AS _s WHERE __r <= 3),
_k3 AS MATERIALIZED (
  SELECT __tid, "pop", __h, __cx, __cy FROM (
    SELECT _k.*, row_number() OVER (PARTITION BY __cx >> 3, __cy >> 3 ORDER BY "pop" DESC NULLS LAST, __h, __tid) AS __r
    FROM (SELECT __tid, "pop", __h, __cx, __cy FROM _k4) AS _k
  ) AS _s WHERE __r <= 3),
_k2 AS MATERIALIZED (
  SELECT __tid, "pop", __h, __cx, __cy FROM (
    SELECT _k.*, row_number() OVER (PARTITION BY __cx >> 4, __cy >> 4 ORDER BY "pop" DESC NULLS LAST, __h, __tid) AS __r
    FROM (SELECT __tid, "pop", __h, __cx, __cy FROM _k3) AS _k
  ) AS _s WHERE __r <= 3),
_k1 AS MATERIALIZED (
  SELECT __tid, "pop", __h, __cx, __cy FROM (
    SELECT _k.*, row_number() OVER (PARTITION BY __cx >> 5, __cy >> 5 ORDER BY "pop" DESC NULLS LAST, __h, __tid) AS __r
    FROM (SELECT __tid, "pop", __h, __cx, __cy FROM _k2) AS _k
  ) AS _s WHERE __r <= 3),
_k0 AS MATERIALIZED (
  SELECT __tid, "pop", __h, __cx, __cy FROM (
    SELECT _k.*, row_number() OVER (PARTITION BY __cx >> 6, __cy >> 6 ORDER BY "pop" DESC NULLS LAST, __h, __tid) AS __r
    FROM (SELECT __tid, "pop", __h, __cx, __cy FROM _k1) AS _k
  ) AS _s WHERE __r <= 3)
SELECT _k.*, coalesce(_m.z, 6)::smallint AS __minz
FROM _k6 AS _k LEFT JOIN (
  SELECT __tid, min(z) AS z FROM (SELECT __tid, 0 AS z FROM _k0 UNION ALL SELECT __tid, 1 AS z FROM _k1 UNION ALL SELECT __tid, 2 AS z FROM _k2 UNION ALL SELECT __tid, 3 AS z FROM _k3 UNION ALL SELECT __tid, 4 AS z FROM _k4 UNION ALL SELECT __tid, 5 AS z FROM _k5) AS _u GROUP BY __tid
) AS _m ON _m.__tid = _k.__tid
ORDER BY coalesce(_m.z, 6), ST_GeoHash(_k."geom"::geometry, 12)
