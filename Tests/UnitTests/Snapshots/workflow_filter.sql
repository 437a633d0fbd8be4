-- parameters: ["1000000"]
SELECT * FROM "tessera_wf_x"."In ""Put""" t WHERE t."population" > CAST($1 AS bigint)
