-- parameters: []
SELECT "t"."id", "t"."Name", "t"."population", "t"."lon", "t"."lat", "t"."geom", carto.h3_fromgeogpoint(ST_Centroid(t."geom"), 7) AS "h3" FROM "tessera_wf_x"."In ""Put""" t
