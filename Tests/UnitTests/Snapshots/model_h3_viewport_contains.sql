-- parameters: ["{\"coordinates\":[[[0,0],[10,0],[10,10],[0,0]]],\"type\":\"Polygon\"}"]
SELECT json_build_object('value', count(*))::text FROM "public"."cells" AS _src WHERE ST_Contains(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326), carto.h3_boundary(carto.h3_string_toint(_src."h3"::text)))
