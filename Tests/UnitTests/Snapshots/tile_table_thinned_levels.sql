-- parameters: ["\u0000z","\u0000x","\u0000y","\u0000xmin","\u0000ymin","\u0000xmax","\u0000ymax","\u0000cx0","\u0000cx1","\u0000cy0","\u0000cy1"]
SELECT ST_AsMVT(t.*, 'default', 512, 'geom' ORDER BY t._carto_feature_id COLLATE "C", t."name" COLLATE "C", t."pop"), count(*) FROM (
  SELECT ST_AsMVTGeom(ST_Transform(ST_SetSRID(_src."geom"::geometry, 4326), 3857), ST_TileEnvelope($1::int, $2::int, $3::int), 512, 8, true) AS geom, _src."name"::text AS "name", _src."pop"::float8 AS "pop", md5(ST_AsBinary(_src."geom"::geometry)) AS _carto_feature_id
  FROM "public"."places" AS _src
  WHERE _src.ctid = ANY (ARRAY(
    SELECT _l.tid FROM carto."tessera_thin_k_1" AS _l
    WHERE _l.__minz <= 3 AND _l.geom && ST_Transform(ST_MakeEnvelope($4::float8, $5::float8, $6::float8, $7::float8, 3857), 4326)
      AND _l.cx >> 3 BETWEEN $8::int AND $9::int
      AND _l.cy >> 3 BETWEEN $10::int AND $11::int))
) t WHERE t.geom IS NOT NULL
