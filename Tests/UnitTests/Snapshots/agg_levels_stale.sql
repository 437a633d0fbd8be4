-- parameters: []
SELECT l.key FROM carto.tessera_agg_levels l
WHERE to_regclass(l.source_table) IS NOT NULL AND l.data_version IS DISTINCT FROM (SELECT c.oid::text || ':' || c.relfilenode || ':' || coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0) FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid WHERE c.oid = to_regclass(l.source_table::text))
ORDER BY l.key
