-- parameters: ["\u0000resolution","\u0000resolution"]
SELECT $1::int AS __r, t.*,
  json_build_object('id', carto.h3_int_tostring(t.__cell), 'properties', to_jsonb(t) - '__cell')::text AS __json
FROM (
  SELECT _src.__cell, count(*) AS n, sum(value) AS total
  FROM (
    SELECT carto.h3_fromlonglat_int(__p.lon, __p.lat, $2::int) AS __cell, _src.*
    FROM "public"."points" AS _src CROSS JOIN LATERAL (SELECT ST_X(__g) AS lon, ST_Y(__g) AS lat FROM (SELECT _src."geom"::geometry AS __g) __q) AS __p
    
  ) AS _src
  GROUP BY __cell
) t
