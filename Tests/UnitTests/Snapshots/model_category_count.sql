-- parameters: ["10000"]
WITH _g AS (SELECT _src."capital" AS name, count(*) AS value FROM "public"."places" AS _src GROUP BY 1),
     _r AS (SELECT name, value, row_number() OVER (ORDER BY name ASC NULLS LAST, value DESC NULLS LAST) AS _rn FROM _g)
SELECT (SELECT coalesce(json_agg(json_build_object('name', name, 'value', value) ORDER BY _rn), '[]')
        FROM _r WHERE _rn <= $1)::text
