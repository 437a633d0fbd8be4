-- parameters: []
SELECT json_build_object('value', (extract(epoch FROM max(_src."updated"))::float8 * 1000))::text FROM "public"."places" AS _src
