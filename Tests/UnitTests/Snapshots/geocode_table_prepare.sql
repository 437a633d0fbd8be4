-- parameters: []
ALTER TABLE "sales"."My ""Addresses" ADD COLUMN IF NOT EXISTS "geom" geometry(Point, 4326);
ALTER TABLE "sales"."My ""Addresses" ADD COLUMN IF NOT EXISTS "lds_geocoded_at" timestamptz
