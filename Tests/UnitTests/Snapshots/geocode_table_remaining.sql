-- parameters: []
SELECT count(*) FROM "sales"."My ""Addresses" WHERE "geom" IS NULL AND "lds_geocoded_at" IS NULL
