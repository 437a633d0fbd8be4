-- parameters: ["{\"true\"}"]
SELECT json_build_object('value', count(*))::text FROM "public"."places" AS _src WHERE ((_src."capital" = ANY($1::bool[])))
