-- parameters: ["3","3"]
WITH _g AS (SELECT _src."name" AS name, sum(_src."pop") AS value FROM "public"."places" AS _src GROUP BY 1),
     _r AS (SELECT name, value, row_number() OVER (ORDER BY value DESC NULLS LAST, name ASC NULLS LAST) AS _rn FROM _g)
SELECT (SELECT coalesce(json_agg(json_build_object('name', name, 'value', value) ORDER BY _rn), '[]')
        FROM _r WHERE _rn <= $1)::text,
  (SELECT to_json(sum(_src."pop")) FROM "public"."places" AS _src WHERE NOT EXISTS (SELECT 1 FROM _r WHERE _r._rn <= $2 AND _r.name IS NOT DISTINCT FROM _src."name"))::text
