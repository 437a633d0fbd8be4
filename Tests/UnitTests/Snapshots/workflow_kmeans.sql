-- parameters: []
SELECT "t"."id", "t"."Name", "t"."population", "t"."lon", "t"."lat", "t"."geom", ST_ClusterKMeans(t."geom", 5) OVER () AS "cluster" FROM "tessera_wf_x"."In ""Put""" t
