-- parameters: ["500"]
SELECT coalesce(json_agg(json_build_object('x', x, 'y', y)), '[]')::text FROM (
  SELECT _src."pop" AS x, ((coalesce(_src."pop", 0) + coalesce(_src."pop", 0))::float8 / nullif(num_nonnulls(_src."pop", _src."pop"), 0)) AS y FROM "public"."places" AS _src WHERE _src."pop" IS NOT NULL AND ((coalesce(_src."pop", 0) + coalesce(_src."pop", 0))::float8 / nullif(num_nonnulls(_src."pop", _src."pop"), 0)) IS NOT NULL LIMIT $1
) _t
