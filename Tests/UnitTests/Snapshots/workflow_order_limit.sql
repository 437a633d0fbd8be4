-- parameters: []
SELECT * FROM "tessera_wf_x"."In ""Put""" ORDER BY "population" DESC NULLS LAST LIMIT 10
