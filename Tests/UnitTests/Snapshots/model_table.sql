-- parameters: ["5","10"]
SELECT (SELECT count(*) FROM "public"."places" AS _src)::text,
       (SELECT coalesce(json_agg(_t), '[]') FROM (
          SELECT _src."name", _src."geom"::geometry::text AS "geom" FROM "public"."places" AS _src ORDER BY _src."pop" DESC NULLS LAST LIMIT $1 OFFSET $2
        ) _t)::text
