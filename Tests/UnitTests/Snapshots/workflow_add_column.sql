-- parameters: ["1000"]
SELECT "t"."id", "t"."Name", "t"."population", "t"."lon", "t"."lat", "t"."geom", (population / $1) AS "density" FROM "tessera_wf_x"."In ""Put""" t
