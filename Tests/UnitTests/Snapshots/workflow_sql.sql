-- parameters: []
SELECT * FROM (SELECT 1 AS one, 'a;b' AS s
) q
