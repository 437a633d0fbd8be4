-- parameters: ["x","1","2","{\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]],\"type\":\"Polygon\"}","{\"f1\"}"]
SELECT json_build_object('value', avg(_src."pop"))::text FROM (
SELECT * FROM places WHERE name <> $1
) AS _src WHERE ((((_src."pop" >= $2::float8 AND _src."pop" <= $3::float8)))) AND ST_Intersects(_src."geom"::geometry, ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON($4), 4326), 25830)) AND md5(ST_AsBinary(_src."geom"::geometry)) = ANY($5::text[])
