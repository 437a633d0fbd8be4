-- parameters: ["{1,2}","\u0000block"]
SELECT v.nband, v.valarray::text FROM "public"."my raster" AS t, ST_DumpValues(t.rast, $1::int[], false) AS v WHERE t.block = $2::bigint ORDER BY v.nband
