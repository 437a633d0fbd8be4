-- parameters: ["%50\\%\\_off\\\\%","%50\\%\\_off\\\\%","%50\\%\\_off\\\\%"]
SELECT count(*) FROM (SELECT 1 FROM "public"."world ""countries""" AS t WHERE t."name"::text ILIKE $1 OR t."pop_est"::text ILIKE $2 OR t."Weird""Col"::text ILIKE $3 LIMIT 10001) AS c
