-- parameters: []
SELECT t."Name", ST_ConvexHull(ST_Collect(t."geom")) AS "geom" FROM "tessera_wf_x"."In ""Put""" t GROUP BY t."Name"
