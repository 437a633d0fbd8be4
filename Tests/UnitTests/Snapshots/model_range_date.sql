-- parameters: []
SELECT json_build_object('min', (extract(epoch FROM min(_src."founded")::timestamp)::float8 * 1000), 'max', (extract(epoch FROM max(_src."founded")::timestamp)::float8 * 1000))::text
FROM "public"."places" AS _src
