-- parameters: []
SELECT "id", "Name" FROM "tessera_wf_x"."In ""Put"""
