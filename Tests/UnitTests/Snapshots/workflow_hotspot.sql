-- parameters: []
WITH cells AS (
  SELECT carto.h3_fromgeogpoint(ST_Centroid(t."geom"), 6) AS h3, sum(t."population")::float8 AS value
  FROM "tessera_wf_x"."In ""Put""" t WHERE t."geom" IS NOT NULL GROUP BY 1),
grid AS (SELECT h3, coalesce(value, 0) AS value, carto.h3_boundary(h3) AS geom FROM cells),
stats AS (SELECT count(*)::float8 AS n, avg(value) AS mean,
          sqrt(greatest(avg(value * value) - avg(value) ^ 2, 0)) AS s FROM grid),
w AS (SELECT a.h3, count(*)::float8 AS wi, sum(b.value) AS sx
      FROM grid a JOIN grid b ON ST_DWithin(a.geom, b.geom, 1e-9) GROUP BY a.h3)
SELECT grid.h3, grid.value,
  CASE WHEN s.s = 0 OR s.n < 2 OR s.n * w.wi - w.wi * w.wi <= 0 THEN NULL
       ELSE (w.sx - s.mean * w.wi) / (s.s * sqrt((s.n * w.wi - w.wi * w.wi) / (s.n - 1))) END AS "gi",
  grid.geom AS "geom"
FROM grid JOIN w USING (h3) CROSS JOIN stats s
