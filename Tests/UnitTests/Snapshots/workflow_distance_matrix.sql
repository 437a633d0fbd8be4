-- parameters: []
SELECT a."id" AS "origin", b."id" AS "destination", ST_Distance(a."geom"::geography, b."geom"::geography) AS "distance"
FROM "tessera_wf_x"."In ""Put""" a CROSS JOIN "tessera_wf_x"."areas" b
