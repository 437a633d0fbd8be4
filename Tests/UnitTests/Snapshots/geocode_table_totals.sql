-- parameters: []
SELECT count(*) FILTER (WHERE "lds_geocoded_at" IS NOT NULL AND "geom" IS NOT NULL), count(*) FILTER (WHERE "lds_geocoded_at" IS NOT NULL AND "geom" IS NULL) FROM "sales"."My ""Addresses"
