-- parameters: ["\u0000answers"]
UPDATE "tessera_wf_x"."n1_abc" AS t SET "geom" = ST_SetSRID(ST_GeomFromGeoJSON(v.geometry), 4326), "distance" = v.distance, "duration" = v.duration FROM json_to_recordset($1::json) AS v(ctid text, geometry text, distance float8, duration float8) WHERE t.ctid = v.ctid::tid
