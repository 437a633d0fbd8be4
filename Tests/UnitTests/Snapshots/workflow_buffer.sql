-- parameters: ["50000"]
SELECT "t"."id", "t"."Name", "t"."population", "t"."lon", "t"."lat", ST_Buffer(t."geom"::geography, CAST($1 AS float8))::geometry AS "geom" FROM "tessera_wf_x"."In ""Put""" t
