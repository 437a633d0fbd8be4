-- parameters: ["\u0000block"]
SELECT ST_AsBinary(t.rast) FROM "public"."my raster" AS t WHERE t.block = $1::bigint
