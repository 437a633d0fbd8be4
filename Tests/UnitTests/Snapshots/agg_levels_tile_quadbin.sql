-- parameters: ["k","tessera_agg_abc_1","\"public\".\"points\"","\u0000resolution","\"public\".\"points\"","\"public\".\"points\"","\u0000resolution","\u0000lo","\u0000hi"]
WITH _levels AS MATERIALIZED (SELECT EXISTS (SELECT 1 FROM carto.tessera_agg_levels l
  WHERE l.key = $1 AND l.relation = $2 AND l.data_version = (SELECT c.oid::text || ':' || c.relfilenode || ':' || coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0) FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid WHERE c.oid = to_regclass($3::text)) AND $4::int = ANY (l.resolutions)
    AND has_table_privilege(to_regclass($5::text), 'SELECT')
    AND NOT (SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass($6::text))) AS fresh)
SELECT coalesce('[' || string_agg(t.__json, ',') || ']', '[]'), count(*), (SELECT fresh FROM _levels)
FROM carto."tessera_agg_abc_1" t
WHERE (SELECT fresh FROM _levels)
  AND t.__r = $7::int AND t.__cell BETWEEN $8::bigint AND $9::bigint
