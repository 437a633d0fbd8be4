-- parameters: ["\u0000key","\u0000key","\u0000relation","\u0000table","\u0000version","\u0000resolutions"]
WITH old AS MATERIALIZED (SELECT relation FROM carto.tessera_agg_levels WHERE key = $1)
INSERT INTO carto.tessera_agg_levels AS l (key, relation, source_table, data_version, resolutions)
VALUES ($2, $3, $4, $5, string_to_array($6, ',')::int[])
ON CONFLICT (key) DO UPDATE SET relation = excluded.relation, source_table = excluded.source_table,
  data_version = excluded.data_version, resolutions = excluded.resolutions, built_at = now()
RETURNING (SELECT relation FROM old)
