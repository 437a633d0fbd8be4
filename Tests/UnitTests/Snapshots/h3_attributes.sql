-- parameters: ["\u0000resolution","\u0000resolution","1","2"]
SELECT coalesce(json_agg(a ORDER BY a.attribute), '[]')::text FROM (
  SELECT e.key AS attribute,
         CASE WHEN bool_and(jsonb_typeof(e.value) IN ('number', 'null')) THEN 'Number' ELSE 'String' END AS type,
         min(CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value #>> '{}')::float8 END) AS min, max(CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value #>> '{}')::float8 END) AS max, sum(CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value #>> '{}')::float8 END) AS sum, avg(CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value #>> '{}')::float8 END) AS avg
  FROM (
SELECT carto.h3_toparent(__c, $1::int) AS __cell, sum(pop) AS pop
FROM "public"."cells" AS _src CROSS JOIN LATERAL (SELECT _src."h3"::bigint AS __c) __k
WHERE carto.h3_resolution(__c) >= $2::int AND ((((_src."pop" >= $3::float8 AND _src."pop" <= $4::float8)))) GROUP BY 1
  ) t, jsonb_each(to_jsonb(t) - '__cell') e
  GROUP BY e.key
) a
