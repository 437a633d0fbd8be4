-- parameters: ["ES","\u0000limit"]
SELECT ctid::text, concat_ws(', ', "street"::text, "City Name"::text), $1::text FROM "sales"."My ""Addresses" WHERE "geom" IS NULL AND "lds_geocoded_at" IS NULL LIMIT $2 FOR UPDATE SKIP LOCKED
