-- parameters: ["\u0000resolution","\u0000resolution","\u0000resolution","\u0000resolution","\u0000resolution","\u0000z","\u0000x","\u0000y","{\"true\"}","\u0000shift","\u0000x","\u0000shift","\u0000y"]
SELECT coalesce(json_agg(json_build_object('id', lpad(to_hex(carto.quadbin_fromzxy($1::int, t.__x, t.__y)), 16, '0'), 'properties', to_jsonb(t) - '__x' - '__y')), '[]')::text, count(*)
FROM (
  SELECT _src.__x, _src.__y, count(*) AS n, sum(pop) AS pop
  FROM (
    SELECT greatest(0, least((1::bigint << $2::int)::float8 - 1, floor((1::bigint << $3::int)::float8 * (__p.lon / 360.0 + 0.5))))::bigint AS __x, greatest(0, least((1::bigint << $4::int)::float8 - 1, floor((1::bigint << $5::int)::float8 * (0.5 - ln((1 + sin(radians(greatest(-85.05112877980659, least(85.05112877980659, __p.lat))))) / (1 - sin(radians(greatest(-85.05112877980659, least(85.05112877980659, __p.lat)))))) / (4 * pi())))))::bigint AS __y, _src.*
    FROM "public"."places" AS _src CROSS JOIN LATERAL (SELECT ST_X(__g) AS lon, ST_Y(__g) AS lat FROM (SELECT ST_Transform(ST_SetSRID(_src."geom"::geometry, 3857), 4326) AS __g) __q) AS __p
    WHERE _src."geom"::geometry && ST_Transform(ST_Transform(ST_TileEnvelope($6::int, $7::int, $8::int), 4326), 3857) AND ((_src."capital" = ANY($9::bool[])))
  ) AS _src
  GROUP BY __x, __y
) t
WHERE (t.__x >> $10::int) = $11::bigint AND (t.__y >> $12::int) = $13::bigint
