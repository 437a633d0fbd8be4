-- parameters: ["0.01"]
SELECT "t"."id", "t"."Name", ST_SimplifyPreserveTopology(t."geom", CAST($1 AS float8)) AS "geom" FROM "tessera_wf_x"."areas" t
