-- parameters: ["https://example.com/data.geojson?x=1"]
SELECT CAST($1 AS text) AS "url"
