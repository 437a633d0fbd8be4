-- parameters: ["10000"]
SELECT "a"."id", "a"."Name", "a"."population", "a"."lon", "a"."lat", "a"."geom", "n"."id" AS "id_2", "n"."Name" AS "Name_2", "n"."geom" AS "geom_2", n."nearest_distance"
FROM "tessera_wf_x"."In ""Put""" a CROSS JOIN LATERAL (
  SELECT b.*, ST_Distance(a."geom"::geography, b."geom"::geography) AS "nearest_distance" FROM "tessera_wf_x"."areas" b WHERE ST_DWithin(a."geom"::geography, b."geom"::geography, CAST($1 AS float8))
  ORDER BY a."geom" <-> b."geom" LIMIT 3) n
