-- parameters: []
SELECT "t"."id", "t"."Name", unnest(carto.h3_polyfill(t."geom", 7)) AS "h3" FROM "tessera_wf_x"."areas" t
