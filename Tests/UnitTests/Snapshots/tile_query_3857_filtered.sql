-- parameters: ["\u0000z","\u0000x","\u0000y","1000","\u0000xmin","\u0000ymin","\u0000xmax","\u0000ymax","{\"Zaragoza\",\"Huesca\"}","\u0000cap"]
SELECT ST_AsMVT(t.*, 'default', 512, 'geom' ORDER BY t._carto_feature_id COLLATE "C", t."name" COLLATE "C", t."pop", t."capital", t."founded" COLLATE "C", t."updated" COLLATE "C"), count(*) FROM (
  SELECT ST_AsMVTGeom(ST_SetSRID(_src."geom"::geometry, 3857), ST_TileEnvelope($1::int, $2::int, $3::int), 512, 8, true) AS geom, _src."name"::text AS "name", _src."pop"::float8 AS "pop", _src."capital" AS "capital", _src."founded"::text AS "founded", _src."updated"::text AS "updated", md5(ST_AsBinary(_src."geom"::geometry)) AS _carto_feature_id
  FROM (
SELECT * FROM places WHERE pop > $4 AND name <> '$1' -- $1
) AS _src
  WHERE _src."geom" && ST_MakeEnvelope($5::float8, $6::float8, $7::float8, $8::float8, 3857) AND ((_src."name"::text = ANY($9::text[])))
  
  LIMIT $10::int
) t WHERE t.geom IS NOT NULL
