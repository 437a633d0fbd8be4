-- parameters: ["walk","600"]
SELECT "t"."id", "t"."Name", "t"."population", "t"."lon", "t"."lat", NULL::geometry(Geometry, 4326) AS "geom", ST_X(ST_PointOnSurface(t."geom")) AS "_tessera_lon", ST_Y(ST_PointOnSurface(t."geom")) AS "_tessera_lat", CAST($1 AS text) AS "_tessera_mode", CAST($2 AS integer) AS "_tessera_range"
FROM "tessera_wf_x"."In ""Put""" t WHERE t."geom" IS NOT NULL
