-- parameters: []
SELECT coalesce(json_agg(p), '[]') FROM (SELECT t."name", t."pop_est", t."Weird""Col" FROM "public"."world ""countries""" AS t LIMIT 50 OFFSET 0) AS p
