-- parameters: ["n","top"]
SELECT json_build_object($1::text, count(*), $2::text, max(_src."pop"))::text FROM "public"."places" AS _src
