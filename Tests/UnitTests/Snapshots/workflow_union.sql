-- parameters: []
SELECT "a"."id", "a"."Name", "a"."population", "a"."lon", "a"."lat", "a"."geom" FROM "tessera_wf_x"."In ""Put""" a UNION ALL SELECT "b"."id", "b"."Name", "b"."population", "b"."lon", "b"."lat", "b"."geom" FROM "tessera_wf_x"."In ""Put""" b
