-- parameters: ["1000"]
SELECT "a"."id", "a"."Name", "a"."population", "a"."lon", "a"."lat", "a"."geom", "b"."id" AS "id_2", "b"."Name" AS "Name_2", "b"."geom" AS "geom_2"
FROM "tessera_wf_x"."In ""Put""" a JOIN "tessera_wf_x"."areas" b ON ST_DWithin(a."geom"::geography, b."geom"::geography, CAST($1 AS float8))
