-- parameters: []
SELECT "t"."id", "t"."Name", ST_Centroid(t."geom") AS "geom" FROM "tessera_wf_x"."areas" t
