-- parameters: ["\u0000updates"]
UPDATE "sales"."My ""Addresses" AS t SET "geom" = CASE WHEN v.lon IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326) END,
       "lds_geocoded_at" = now()
FROM json_to_recordset($1::json) AS v(ctid text, lon float8, lat float8)
WHERE t.ctid = v.ctid::tid
