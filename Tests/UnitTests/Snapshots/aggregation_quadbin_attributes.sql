-- parameters: ["\u0000resolution","\u0000resolution","\u0000resolution","\u0000resolution","{\"true\"}"]
SELECT coalesce(json_agg(a ORDER BY a.attribute), '[]')::text FROM (
  SELECT e.key AS attribute,
         CASE WHEN bool_and(jsonb_typeof(e.value) IN ('number', 'null')) THEN 'Number' ELSE 'String' END AS type,
         min(CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value #>> '{}')::float8 END) AS min, max(CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value #>> '{}')::float8 END) AS max, sum(CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value #>> '{}')::float8 END) AS sum, avg(CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value #>> '{}')::float8 END) AS avg
  FROM (
  SELECT _src.__x, _src.__y, count(*) AS n, sum(pop) AS pop
  FROM (
    SELECT greatest(0, least((1::bigint << $1::int)::float8 - 1, floor((1::bigint << $2::int)::float8 * (__p.lon / 360.0 + 0.5))))::bigint AS __x, greatest(0, least((1::bigint << $3::int)::float8 - 1, floor((1::bigint << $4::int)::float8 * (0.5 - ln((1 + sin(radians(greatest(-85.05112877980659, least(85.05112877980659, __p.lat))))) / (1 - sin(radians(greatest(-85.05112877980659, least(85.05112877980659, __p.lat)))))) / (4 * pi())))))::bigint AS __y, _src.*
    FROM "public"."places" AS _src CROSS JOIN LATERAL (SELECT ST_X(__g) AS lon, ST_Y(__g) AS lat FROM (SELECT _src."geom"::geometry AS __g) __q) AS __p
    WHERE ((_src."capital" = ANY($5::bool[])))
  ) AS _src
  GROUP BY __x, __y
  ) t, jsonb_each(to_jsonb(t) - '__x' - '__y') e
  GROUP BY e.key
) a
