-- parameters: ["\u0000z","\u0000x","\u0000y","\u0000xmin","\u0000ymin","\u0000xmax","\u0000ymax","\u0000cells","\u0000cells","\u0000cx0","\u0000cx1","\u0000cy0","\u0000cy1","\u0000percell"]
SELECT ST_AsMVT(t.*, 'default', 512, 'geom' ORDER BY t._carto_feature_id COLLATE "C", t."name" COLLATE "C", t."pop"), count(*) FROM (
  SELECT ST_AsMVTGeom(ST_Transform(ST_SetSRID(_src."geom"::geometry, 4326), 3857), ST_TileEnvelope($1::int, $2::int, $3::int), 512, 8, true) AS geom, _src."name"::text AS "name", _src."pop"::float8 AS "pop", md5(ST_AsBinary(_src."geom"::geometry)) AS _carto_feature_id
  FROM "public"."places" AS _src
  WHERE _src.ctid = ANY (ARRAY(
    SELECT _k.tid FROM (
      SELECT _p.tid, row_number() OVER (PARTITION BY _c.cx, _c.cy ORDER BY hashfloat8extended(_p._x, 0) # hashfloat8extended(_p._y, 1), _p.tid) AS _r
      FROM (SELECT _src.ctid AS tid, ST_XMin(_src."geom"::geometry) AS _x, ST_YMin(_src."geom"::geometry) AS _y FROM "public"."places" AS _src
            WHERE _src."geom" && ST_Transform(ST_MakeEnvelope($4::float8, $5::float8, $6::float8, $7::float8, 3857), 4326) OFFSET 0) AS _p
      CROSS JOIN LATERAL (SELECT floor((_p._x + 180) / 360 * $8::float8)::int8 AS cx, floor((1 - asinh(tan(radians(greatest(-85.0511, least(85.0511, _p._y))))) / pi()) / 2 * $9::float8)::int8 AS cy) AS _c
      WHERE _c.cx BETWEEN $10::int8 AND $11::int8 AND _c.cy BETWEEN $12::int8 AND $13::int8
    ) AS _k WHERE _k._r <= $14::int))
) t WHERE t.geom IS NOT NULL
