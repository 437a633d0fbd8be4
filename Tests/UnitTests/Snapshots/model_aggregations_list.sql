-- parameters: ["total","count"]
SELECT json_build_object($1::text, sum(_src."pop"), $2::text, count(*))::text FROM "public"."places" AS _src
