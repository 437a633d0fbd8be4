-- parameters: ["{\"true\"}"]
SELECT count(*), ST_Extent(ST_Transform(ST_SetSRID(_src."geom"::geometry, 4326), 4326))::text, min(_src."pop")::float8, max(_src."pop")::float8, sum(_src."pop")::float8, avg(_src."pop")::float8 FROM "public"."places" AS _src WHERE ((_src."capital" = ANY($1::bool[])))
