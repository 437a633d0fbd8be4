-- parameters: []
SELECT coalesce(json_agg(_t), '[]')::text FROM (SELECT sum(pop) * 2 AS double
FROM "public"."places" AS _src LIMIT 10000) _t
