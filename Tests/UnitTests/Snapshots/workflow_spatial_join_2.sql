-- parameters: []
SELECT "a"."id", "a"."Name", "a"."population", "a"."lon", "a"."lat", "a"."geom", j.* FROM "tessera_wf_x"."In ""Put""" a LEFT JOIN LATERAL (
  SELECT count(*) AS "areas" FROM "tessera_wf_x"."areas" b WHERE ST_Intersects(a."geom", b."geom")) j ON true
