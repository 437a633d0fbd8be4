-- parameters: ["\u0000resolution","\u0000resolution","\u0000resolution","\u0000resolution","\u0000resolution","\u0000resolution","\u0000resolution"]
SELECT $1::int AS __r, carto.quadbin_fromzxy($2::int, t.__x, t.__y) AS __cell, t.*,
  json_build_object('id', lpad(to_hex(carto.quadbin_fromzxy($3::int, t.__x, t.__y)), 16, '0'), 'properties', to_jsonb(t) - '__x' - '__y')::text AS __json
FROM (
  SELECT _src.__x, _src.__y, count(*) AS n, sum(value) AS total
  FROM (
    SELECT greatest(0, least((1::bigint << $4::int)::float8 - 1, floor((1::bigint << $5::int)::float8 * (__p.lon / 360.0 + 0.5))))::bigint AS __x, greatest(0, least((1::bigint << $6::int)::float8 - 1, floor((1::bigint << $7::int)::float8 * (0.5 - ln((1 + sin(radians(greatest(-85.05112877980659, least(85.05112877980659, __p.lat))))) / (1 - sin(radians(greatest(-85.05112877980659, least(85.05112877980659, __p.lat)))))) / (4 * pi())))))::bigint AS __y, _src.*
    FROM "public"."points" AS _src CROSS JOIN LATERAL (SELECT ST_X(__g) AS lon, ST_Y(__g) AS lat FROM (SELECT _src."geom"::geometry AS __g) __q) AS __p
    
  ) AS _src
  GROUP BY __x, __y
) t
