-- parameters: ["{599686042433355775}"]
SELECT json_build_object('value', count(*))::text FROM "public"."cells" AS _src WHERE EXISTS (SELECT 1 FROM unnest($1::bigint[]) AS __sel(cell) WHERE CASE
  WHEN carto.h3_resolution(__sel.cell) <= carto.h3_resolution(carto.h3_string_toint(_src."h3"::text))
  THEN carto.h3_toparent(carto.h3_string_toint(_src."h3"::text), carto.h3_resolution(__sel.cell)) = __sel.cell ELSE false END)
