-- parameters: ["\u0000z","\u0000x","\u0000y","\u0000xmin","\u0000ymin","\u0000xmax","\u0000ymax","\u0000cap"]
SELECT ST_AsMVT(t.*, 'default', 512, 'geom' ORDER BY t._carto_feature_id COLLATE "C", t."a""b; DROP TABLE x; --" COLLATE "C", t."名前"), count(*) FROM (
  SELECT ST_AsMVTGeom(ST_Transform(ST_SetSRID(_src."g""eom"::geometry, 4326), 3857), ST_TileEnvelope($1::int, $2::int, $3::int), 512, 8, true) AS geom, _src."a""b; DROP TABLE x; --"::text AS "a""b; DROP TABLE x; --", _src."名前"::float8 AS "名前", md5(ST_AsBinary(_src."g""eom"::geometry)) AS _carto_feature_id
  FROM "we""ird.schema"."Ünï 名" AS _src
  WHERE _src."g""eom" && ST_Transform(ST_MakeEnvelope($4::float8, $5::float8, $6::float8, $7::float8, 3857), 4326)
  
  LIMIT $8::int
) t WHERE t.geom IS NOT NULL
