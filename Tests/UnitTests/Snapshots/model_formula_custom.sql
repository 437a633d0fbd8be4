-- parameters: []
SELECT json_build_object('value', (sum(pop) / count(*)
))::text FROM "public"."places" AS _src
