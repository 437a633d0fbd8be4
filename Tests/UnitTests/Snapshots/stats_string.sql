-- parameters: ["5","{\"false\"}"]
SELECT _src."name"::text, count(*) FROM (
SELECT * FROM places WHERE pop > $1
) AS _src WHERE ((_src."capital" = ANY($2::bool[])))
GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 50
