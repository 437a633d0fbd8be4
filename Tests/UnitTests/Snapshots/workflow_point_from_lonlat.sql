-- parameters: []
SELECT "t"."id", "t"."Name", "t"."population", "t"."lon", "t"."lat", ST_SetSRID(ST_MakePoint(t."lon"::float8, t."lat"::float8), 4326) AS "geom" FROM "tessera_wf_x"."In ""Put""" t
