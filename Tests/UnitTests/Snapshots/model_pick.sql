-- parameters: ["{\"abc\",\"def\"}","{\"abc\",\"def\"}","{\"abc\",\"def\"}","1000","0"]
SELECT (SELECT count(*) FROM "public"."places" AS _src WHERE md5(ST_AsBinary(_src."geom"::geometry)) = ANY($1::text[]))::text,
       (SELECT coalesce(json_agg(_t), '[]') FROM (
          SELECT _src."name", md5(ST_AsBinary(_src."geom"::geometry)) AS "_carto_feature_id" FROM "public"."places" AS _src WHERE md5(ST_AsBinary(_src."geom"::geometry)) = ANY($2::text[]) ORDER BY array_position($3::text[], md5(ST_AsBinary(_src."geom"::geometry))) LIMIT $4 OFFSET $5
        ) _t)::text
