-- parameters: ["\u0000resolution","\u0000tile","{\"true\"}","\u0000z","\u0000tile"]
SELECT coalesce(json_agg(json_build_object('id', t.__cell::text, 'properties', to_jsonb(t) - '__cell')), '[]')::text, count(*)
FROM (
  SELECT _src.__cell, count(*) AS n, sum(pop) AS pop
  FROM (
    SELECT h3_latlng_to_cell(ST_SetSRID(ST_MakePoint(__p.lon, __p.lat), 4326), $1::int) AS __cell, _src.*
    FROM "public"."places" AS _src CROSS JOIN LATERAL (SELECT ST_X(__g) AS lon, ST_Y(__g) AS lat FROM (SELECT _src."geom"::geometry AS __g) __q) AS __p
    WHERE _src."geom"::geometry && h3_cell_to_boundary_geometry($2::h3index) AND ((_src."capital" = ANY($3::bool[])))
  ) AS _src
  GROUP BY __cell
) t
WHERE h3_cell_to_parent(t.__cell, $4::int) = $5::h3index
