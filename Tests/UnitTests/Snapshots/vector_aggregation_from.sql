-- parameters: []
(SELECT _agg."geom" AS "geom", count(*) AS n, sum(pop) AS pop FROM "public"."places" AS _agg GROUP BY _agg."geom")
