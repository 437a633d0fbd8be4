-- parameters: ["{5206653750449537023,5206653750449537023}"]
SELECT json_build_object('value', count(*))::text FROM "public"."cells" AS _src WHERE EXISTS (SELECT 1 FROM unnest($1::bigint[]) AS __sel(cell) WHERE CASE
  WHEN carto.quadbin_resolution(__sel.cell) <= carto.quadbin_resolution(_src."quadbin"::bigint)
  THEN carto.quadbin_toparent(_src."quadbin"::bigint, carto.quadbin_resolution(__sel.cell)) = __sel.cell ELSE false END)
