-- parameters: ["ES"]
SELECT "t"."id", "t"."Name", "t"."population", "t"."lon", "t"."lat", ST_SetSRID(ST_MakePoint(g.longitude, g.latitude), 4326) AS "geom", g.relevance AS "geocode_relevance"
FROM "tessera_wf_x"."In ""Put""" t LEFT JOIN LATERAL carto_lds.geocode(t."Name"::text, CAST($1 AS text), 1) g ON true
