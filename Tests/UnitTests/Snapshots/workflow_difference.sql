-- parameters: []
WITH o AS (SELECT ST_Union("geom") AS g FROM "tessera_wf_x"."areas")
SELECT * FROM (SELECT "t"."id", "t"."Name", "t"."population", "t"."lon", "t"."lat", CASE WHEN o.g IS NULL THEN t."geom" ELSE ST_Difference(t."geom", o.g) END AS "geom"
  FROM "tessera_wf_x"."In ""Put""" t, o) d WHERE NOT ST_IsEmpty(d."geom")
