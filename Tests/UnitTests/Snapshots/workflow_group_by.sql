-- parameters: []
SELECT "Name", count(*) AS "count", sum("population") AS "pop" FROM "tessera_wf_x"."In ""Put""" GROUP BY "Name"
