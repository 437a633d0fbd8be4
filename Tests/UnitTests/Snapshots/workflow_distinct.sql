-- parameters: []
SELECT DISTINCT ON ("Name") * FROM "tessera_wf_x"."In ""Put"""
