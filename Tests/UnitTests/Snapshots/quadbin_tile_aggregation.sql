-- parameters: ["\u0000resolution","\u0000z","\u0000x","\u0000y","\u0000dataResolution","1","2"]
SELECT coalesce(json_agg(json_build_object('id', lpad(to_hex(t.__cell), 16, '0'), 'properties', to_jsonb(t) - '__cell') ORDER BY t.__cell), '[]')::text
FROM (
  SELECT carto.quadbin_toparent(_src."quadbin"::bigint, $1::int) AS __cell, sum(pop) AS pop
  FROM "public"."cells" AS _src, carto.__quadbin_children_range(carto.quadbin_fromzxy($2::int, $3::bigint, $4::bigint), $5::int) AS r
  WHERE _src."quadbin"::bigint BETWEEN r.lo AND r.hi AND ((((_src."pop" >= $6::float8 AND _src."pop" <= $7::float8))))
  GROUP BY 1
) t
