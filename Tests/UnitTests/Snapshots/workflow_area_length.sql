-- parameters: []
SELECT "t"."id", "t"."Name", "t"."geom", ST_Area(t."geom"::geography) AS "area_m2", ST_Length(t."geom"::geography) AS "length_m" FROM "tessera_wf_x"."areas" t
