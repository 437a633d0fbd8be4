-- parameters: []
SELECT json_build_object('value', sum(_src."pop"))::text FROM "public"."places" AS _src
