-- parameters: ["\u0000key","\u0000table","\u0000table","\u0000table"]
SELECT l.relation, array_to_string(l.resolutions, ',') FROM carto.tessera_agg_levels l
WHERE l.key = $1 AND l.data_version = (SELECT c.oid::text || ':' || c.relfilenode || ':' || coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0) FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid WHERE c.oid = to_regclass($2::text))
  AND has_table_privilege(to_regclass($3::text), 'SELECT')
  AND has_table_privilege(to_regclass('carto.' || quote_ident(l.relation)), 'SELECT')
  AND NOT (SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass($4::text))
