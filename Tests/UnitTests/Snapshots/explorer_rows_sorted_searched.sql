-- parameters: ["%50\\%\\_off\\\\%","%50\\%\\_off\\\\%","%50\\%\\_off\\\\%"]
SELECT coalesce(json_agg(p), '[]') FROM (SELECT t."name", t."pop_est", t."Weird""Col" FROM "public"."world ""countries""" AS t WHERE t."name"::text ILIKE $1 OR t."pop_est"::text ILIKE $2 OR t."Weird""Col"::text ILIKE $3 ORDER BY t."pop_est" DESC NULLS LAST LIMIT 25 OFFSET 75) AS p
