-- parameters: []
(SELECT * FROM "public"."counties" AS _b JOIN "stats"."county props" AS _p USING ("geoid"))
