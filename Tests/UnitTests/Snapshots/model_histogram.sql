-- parameters: ["{\"10\",\"100\",\"1000\"}"]
SELECT coalesce(json_agg(json_build_object('tick', tick, 'value', value) ORDER BY tick), '[]')::text FROM (
  SELECT width_bucket(_src."pop"::float8, $1::float8[]) AS tick, count(*) AS value
  FROM "public"."places" AS _src WHERE _src."pop" IS NOT NULL GROUP BY 1
) _h
