-- parameters: ["\u0000resolution","\u0000resolution","\u0000resolution","\u0000z","\u0000tile","1","2"]
SELECT coalesce(json_agg(json_build_object('id', carto.h3_int_tostring(t.__cell), 'properties', to_jsonb(t) - '__cell')), '[]')::text, count(*)
FROM (
SELECT carto.h3_toparent(__c, $1::int) AS __cell, sum(pop) AS pop
FROM "public"."cells" AS _src CROSS JOIN LATERAL (SELECT _src."h3"::bigint AS __c) __k
WHERE carto.h3_resolution(__c) >= $2::int AND CASE WHEN carto.h3_resolution(__c) >= $3::int THEN carto.h3_toparent(__c, $4::int) = $5::bigint END AND ((((_src."pop" >= $6::float8 AND _src."pop" <= $7::float8)))) GROUP BY 1
) t
