-- parameters: []
WITH o AS (SELECT ST_Union("geom") AS g FROM "tessera_wf_x"."areas")
SELECT "t"."id", "t"."Name", "t"."population", "t"."lon", "t"."lat", ST_Intersection(t."geom", o.g) AS "geom" FROM "tessera_wf_x"."In ""Put""" t, o
WHERE ST_Intersects(t."geom", o.g)
