-- parameters: ["\u0000z","\u0000x","\u0000y","\u0000xmin","\u0000ymin","\u0000xmax","\u0000ymax","\u0000cx0","\u0000cx1","\u0000cy0","\u0000cy1"]
SELECT ST_AsMVT(t.*, 'default', 512, 'geom' ORDER BY t._carto_feature_id COLLATE "C", t."name" COLLATE "C", t."pop"), count(*) FROM (
  SELECT ST_AsMVTGeom(ST_Transform(ST_SetSRID(_src."geom"::geometry, 4326), 3857), ST_TileEnvelope($1::int, $2::int, $3::int), 512, 8, true) AS geom, _src."name"::text AS "name", _src."pop"::float8 AS "pop", md5(ST_AsBinary(_src."geom"::geometry)) AS _carto_feature_id
  FROM carto."tessera_thin_k_1" AS _src
  WHERE _src.__minz <= 3 AND _src."geom" && ST_Transform(ST_MakeEnvelope($4::float8, $5::float8, $6::float8, $7::float8, 3857), 4326)
    AND _src.__cx >> 3 BETWEEN $8::int8 AND $9::int8
    AND _src.__cy >> 3 BETWEEN $10::int8 AND $11::int8
) t WHERE t.geom IS NOT NULL
