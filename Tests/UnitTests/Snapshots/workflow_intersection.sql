-- parameters: []
SELECT "t"."id", "t"."Name", "t"."population", "t"."lon", "t"."lat", ST_Intersection(t."geom", b."geom") AS "geom", "b"."id" AS "id_2", "b"."Name" AS "Name_2"
FROM "tessera_wf_x"."In ""Put""" t JOIN "tessera_wf_x"."areas" b ON ST_Intersects(t."geom", b."geom")
