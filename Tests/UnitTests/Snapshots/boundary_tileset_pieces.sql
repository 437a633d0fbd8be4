-- parameters: ["\u0000z","\u0000z","\u0000z","\u0000z","\u0000z"]
INSERT INTO "public"."my bnd__building" (z, x, y, "geoid", _carto_feature_id, geom)
SELECT $1::int, tx.x, ty.y, s."geoid", s.fid, g.geom
FROM (SELECT _src."geoid", md5(ST_AsBinary(_src."geom"::geometry)) AS fid, ST_Transform(ST_SetSRID(_src."geom"::geometry, coalesce(nullif(ST_SRID(_src."geom"::geometry), 0), 4326)), 3857) AS m
      FROM "public"."counties" AS _src WHERE _src."geom" IS NOT NULL) s
CROSS JOIN LATERAL (SELECT 40075016.68557849 / (1 << $2::int)::float8 AS size) k
CROSS JOIN LATERAL (SELECT ST_Expand(s.m, k.size * 256 / 4096) AS b) e
CROSS JOIN LATERAL generate_series(greatest(0, floor((ST_XMin(e.b) + 20037508.342789244) / k.size)::int),
                                   least((1 << $3::int) - 1, floor((ST_XMax(e.b) + 20037508.342789244) / k.size)::int)) AS tx(x)
CROSS JOIN LATERAL generate_series(greatest(0, floor((20037508.342789244 - ST_YMax(e.b)) / k.size)::int),
                                   least((1 << $4::int) - 1, floor((20037508.342789244 - ST_YMin(e.b)) / k.size)::int)) AS ty(y)
CROSS JOIN LATERAL (SELECT ST_AsMVTGeom(s.m, ST_TileEnvelope($5::int, tx.x, ty.y), 4096, 256, true) AS geom) g
WHERE g.geom IS NOT NULL
