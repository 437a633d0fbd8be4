-- parameters: []
SELECT "t"."h3", "t"."value", carto.h3_boundary(t."h3") AS "geom" FROM "tessera_wf_x"."cells" t
