-- parameters: ["\u0000tileResolution"]
INSERT INTO "public"."my tiles__building" (cell, data)
SELECT carto.h3_toparent(t.__cell, $1::int), json_agg(json_build_object('id', carto.h3_int_tostring(t.__cell), 'properties', to_jsonb(t) - '__cell') ORDER BY t.__cell)::text
FROM (
SELECT c AS __cell, count(*) AS n FROM t GROUP BY 1
) t GROUP BY 1
