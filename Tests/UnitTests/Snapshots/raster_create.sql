-- parameters: []
CREATE TABLE "public"."my raster" (block bigint PRIMARY KEY, rast raster NOT NULL)
