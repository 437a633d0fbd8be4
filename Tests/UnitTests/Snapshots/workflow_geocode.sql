-- parameters: ["ES"]
SELECT "t"."id", "t"."Name", "t"."population", "t"."lon", "t"."lat", NULL::geometry(Point, 4326) AS "geom", NULL::float8 AS "geocode_relevance", t."Name"::text AS "_tessera_address", CAST($1 AS text) AS "_tessera_country"
FROM "tessera_wf_x"."In ""Put""" t
