-- parameters: ["5","{\"false\"}"]
SELECT ST_Extent(ST_Transform(_src."geom"::geometry, 4326))::text FROM (
SELECT * FROM places WHERE pop > $1
) AS _src WHERE ((_src."capital" = ANY($2::bool[])))
