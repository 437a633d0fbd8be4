-- parameters: ["\u0000z","\u0000x","\u0000y","\u0000xmin","\u0000ymin","\u0000xmax","\u0000ymax","\u0000cap"]
SELECT ST_AsMVT(t.*, 'default', 512, 'geom' ORDER BY t._carto_feature_id COLLATE "C", t."speed", t."trip_id", t."ts"), count(*) FROM (
  SELECT ST_AsMVTGeom(ST_Transform(ST_SetSRID(_src."geom"::geometry, 4326), 3857), ST_TileEnvelope($1::int, $2::int, $3::int), 512, 8, true) AS geom, _src."speed"::float8 AS "speed", _src."trip_id"::float8 AS "trip_id", (extract(epoch FROM _src."ts") * 1000)::float8 AS "ts", md5(ST_AsBinary(_src."geom"::geometry)) AS _carto_feature_id
  FROM "public"."trips" AS _src
  WHERE _src."geom" && ST_Transform(ST_MakeEnvelope($4::float8, $5::float8, $6::float8, $7::float8, 3857), 4326)
  
  LIMIT $8::int
) t WHERE t.geom IS NOT NULL
