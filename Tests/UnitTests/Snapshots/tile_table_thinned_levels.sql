-- parameters: ["k","tessera_thin_k_1","\"public\".\"places\"","\"public\".\"places\"","\"public\".\"places\"","\u0000z","\u0000x","\u0000y","\u0000xmin","\u0000ymin","\u0000xmax","\u0000ymax","\u0000cx0","\u0000cx1","\u0000cy0","\u0000cy1"]
WITH _levels AS MATERIALIZED (SELECT EXISTS (SELECT 1 FROM carto.tessera_agg_levels l
  WHERE l.key = $1 AND l.relation = $2 AND l.data_version = (SELECT c.oid::text || ':' || c.relfilenode || ':' || coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0) FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid WHERE c.oid = to_regclass($3::text))
    AND has_table_privilege(to_regclass($4::text), 'SELECT')
    AND NOT (SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass($5::text))) AS fresh)
SELECT ST_AsMVT(t.*, 'default', 512, 'geom' ORDER BY t._carto_feature_id COLLATE "C", t."name" COLLATE "C", t."pop"), count(*), (SELECT fresh FROM _levels) FROM (
  SELECT ST_AsMVTGeom(ST_Transform(ST_SetSRID(_src."geom"::geometry, 4326), 3857), ST_TileEnvelope($6::int, $7::int, $8::int), 512, 8, true) AS geom, _src."name"::text AS "name", _src."pop"::float8 AS "pop", md5(ST_AsBinary(_src."geom"::geometry)) AS _carto_feature_id
  FROM carto."tessera_thin_k_1" AS _src
  WHERE (SELECT fresh FROM _levels) AND _src.__minz <= 3 AND _src."geom" && ST_Transform(ST_MakeEnvelope($9::float8, $10::float8, $11::float8, $12::float8, 3857), 4326)
    AND _src.__cx >> 3 BETWEEN $13::int8 AND $14::int8
    AND _src.__cy >> 3 BETWEEN $15::int8 AND $16::int8
) t WHERE t.geom IS NOT NULL
