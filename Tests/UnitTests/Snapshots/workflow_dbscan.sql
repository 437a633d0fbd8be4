-- parameters: ["500"]
WITH s AS (SELECT greatest(cos(radians(avg(ST_Y(ST_Centroid("geom"))))), 0.01) AS k FROM "tessera_wf_x"."In ""Put""")
SELECT "t"."id", "t"."Name", "t"."population", "t"."lon", "t"."lat", "t"."geom", ST_ClusterDBSCAN(ST_Transform(t."geom", 3857), eps => CAST($1 AS float8) / s.k, minpoints => 4) OVER () AS "cluster"
FROM "tessera_wf_x"."In ""Put""" t, s
