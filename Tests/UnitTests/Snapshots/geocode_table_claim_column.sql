-- parameters: ["\u0000limit"]
SELECT ctid::text, concat_ws(', ', "street"::text, "City Name"::text), NULLIF(upper(btrim("cc"::text)), '') FROM "public"."addresses" WHERE "geom" IS NULL AND "lds_geocoded_at" IS NULL LIMIT $1 FOR UPDATE SKIP LOCKED
