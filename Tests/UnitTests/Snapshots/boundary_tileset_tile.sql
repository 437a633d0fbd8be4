-- parameters: ["\u0000z","\u0000x","\u0000y","west"]
SELECT ST_AsMVT(t.*, 'default', 4096, 'geom') FROM (
  SELECT f.geom, f._carto_feature_id, _src."geoid", _src."population" FROM "public"."my bnd" AS f JOIN "public"."counties" AS _src ON _src."geoid" = f."geoid"
  WHERE f.z = $1::int AND f.x = $2::int AND f.y = $3::int AND _src."region" = $4 ORDER BY f."geoid") t
