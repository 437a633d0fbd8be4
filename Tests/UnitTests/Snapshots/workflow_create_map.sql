-- parameters: []
SELECT * FROM "tessera_wf_x"."In ""Put"""
