-- parameters: ["1209600","1209600"]
SELECT coalesce(json_agg(json_build_object('name', name, 'value', value) ORDER BY name), '[]')::text FROM (
  SELECT ((floor((extract(epoch FROM _src."updated")::float8 - 345600) / $1::float8) * $2::float8 + 345600) * 1000) AS name, count(*) AS value FROM "public"."places" AS _src WHERE _src."updated" IS NOT NULL GROUP BY 1 ORDER BY 1 LIMIT 50001
) _t
