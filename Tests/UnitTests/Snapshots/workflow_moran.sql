-- parameters: ["20000"]
WITH p AS (SELECT row_number() OVER () AS i, t."population"::float8 AS x, t."geom" AS g FROM "tessera_wf_x"."In ""Put""" t
           WHERE t."population" IS NOT NULL AND t."geom" IS NOT NULL),
m AS (SELECT avg(x) AS mean, count(*)::float8 AS n FROM p),
d AS (SELECT sum((x - m.mean) ^ 2) AS ss FROM p, m),
w AS (SELECT count(*)::float8 AS wsum, sum((a.x - m.mean) * (b.x - m.mean)) AS xprod
      FROM p a JOIN p b ON a.i <> b.i AND ST_DWithin(a.g::geography, b.g::geography, CAST($1 AS float8)) CROSS JOIN m)
SELECT CASE WHEN w.wsum > 0 AND d.ss > 0 THEN (m.n / w.wsum) * (w.xprod / d.ss) END AS "moran_i",
       CASE WHEN m.n > 1 THEN -1 / (m.n - 1) END AS "expected", m.n::bigint AS "n", w.wsum::bigint AS "neighbour_pairs"
FROM m, d, w
