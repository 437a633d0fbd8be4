-- parameters: ["\u0000z","\u0000x","\u0000y","10","\u0000xmin","\u0000ymin","\u0000xmax","\u0000ymax","\u0000cells","\u0000cells","\u0000cx0","\u0000cx1","\u0000cy0","\u0000cy1","\u0000percell"]
SELECT ST_AsMVT(t.*, 'default', 512, 'geom' ORDER BY t._carto_feature_id COLLATE "C", t."name" COLLATE "C", t."pop"), count(*) FROM (
  SELECT ST_AsMVTGeom(ST_SetSRID(_src."geom"::geometry, 3857), ST_TileEnvelope($1::int, $2::int, $3::int), 512, 8, true) AS geom, _src."name"::text AS "name", _src."pop"::float8 AS "pop", md5(ST_AsBinary(_src."geom"::geometry)) AS _carto_feature_id
  FROM (
    SELECT _p.*, row_number() OVER (PARTITION BY _c.cx, _c.cy ORDER BY hashfloat8extended(_p._x, 0) # hashfloat8extended(_p._y, 1), _p."name"::text COLLATE "C", _p."pop") AS _carto_rank
    FROM (SELECT _src.*, ST_XMin(_src."geom"::geometry) AS _x, ST_YMin(_src."geom"::geometry) AS _y FROM (
SELECT * FROM places WHERE pop > $4
) AS _src WHERE _src."geom" && ST_MakeEnvelope($5::float8, $6::float8, $7::float8, $8::float8, 3857) OFFSET 0) AS _p
    CROSS JOIN LATERAL (SELECT floor((_p._x + 20037508.342789244::float8) / (2 * 20037508.342789244::float8) * $9::float8)::int8 AS cx, floor((20037508.342789244::float8 - _p._y) / (2 * 20037508.342789244::float8) * $10::float8)::int8 AS cy) AS _c
    WHERE _c.cx BETWEEN $11::int8 AND $12::int8 AND _c.cy BETWEEN $13::int8 AND $14::int8
  ) AS _src
  WHERE _src._carto_rank <= $15::int
) t WHERE t.geom IS NOT NULL
