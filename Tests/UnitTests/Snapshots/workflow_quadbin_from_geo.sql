-- parameters: []
SELECT "t"."id", "t"."Name", "t"."population", "t"."lon", "t"."lat", "t"."geom", carto.quadbin_frompoint(ST_Centroid(t."geom"), 10) AS "quadbin" FROM "tessera_wf_x"."In ""Put""" t
