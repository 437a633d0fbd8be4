-- parameters: ["\u0000resolution","\u0000tile","{\"true\"}","\u0000z","\u0000tile"]
SELECT coalesce(json_agg(json_build_object('id', carto.h3_int_tostring(t.__cell), 'properties', to_jsonb(t) - '__cell')), '[]')::text, count(*)
FROM (
  SELECT _src.__cell, count(*) AS n, sum(pop) AS pop
  FROM (
    SELECT carto.h3_fromlonglat_int(__p.lon, __p.lat, $1::int) AS __cell, _src.*
    FROM "public"."places" AS _src CROSS JOIN LATERAL (SELECT ST_X(__g) AS lon, ST_Y(__g) AS lat FROM (SELECT _src."geom"::geometry AS __g) __q) AS __p
    WHERE _src."geom"::geometry && (SELECT ST_ClipByBox2D(ST_Expand(__b, (ST_XMax(__b) - ST_XMin(__b)) / 2, (ST_YMax(__b) - ST_YMin(__b)) / 2), ST_MakeEnvelope(-180, -89.999, 180, 89.999, 4326)) FROM (SELECT ST_Envelope(carto.h3_boundary($2::bigint)) AS __b) __t) AND ((_src."capital" = ANY($3::bool[])))
  ) AS _src
  GROUP BY __cell
) t
WHERE carto.h3_toparent(t.__cell, $4::int) = $5::bigint
