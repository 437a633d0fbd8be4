-- parameters: []
SELECT "id", "Name" AS "name", "population", "lon", "lat", "geom" FROM "tessera_wf_x"."In ""Put"""
