-- parameters: ["\u0000cells","\u0000cells"]
WITH f AS (SELECT cx, cy, count(*) * 100 AS n FROM (SELECT floor((ST_XMin(_src."geom"::geometry) + 180) / 360 * $1::float8)::int8 AS cx, floor((1 - asinh(tan(radians(greatest(-85.0511, least(85.0511, ST_YMin(_src."geom"::geometry)))))) / pi()) / 2 * $2::float8)::int8 AS cy FROM "public"."places" AS _src TABLESAMPLE SYSTEM (1) REPEATABLE (0)) s GROUP BY 1, 2)
SELECT z, sum(n)::float8, sum(least(n, 3))::float8 FROM (
  SELECT z, sum(n) AS n FROM f, generate_series(0, 7) AS z
  GROUP BY z, f.cx >> (7 - z), f.cy >> (7 - z)
) g GROUP BY z ORDER BY z
