-- parameters: ["8","5","01"]
INSERT INTO "public"."my raster" (block, rast) VALUES (carto.quadbin_fromzxy(4, $1::bigint, $2::bigint), $3::raster)
