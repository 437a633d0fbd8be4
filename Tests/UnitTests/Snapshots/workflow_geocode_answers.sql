-- parameters: ["\u0000answers"]
UPDATE "tessera_wf_x"."n1_abc" AS t SET "geom" = CASE WHEN v.lon IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326) END, "geocode_relevance" = v.relevance FROM json_to_recordset($1::json) AS v(ctid text, lon float8, lat float8, relevance float8) WHERE t.ctid = v.ctid::tid
