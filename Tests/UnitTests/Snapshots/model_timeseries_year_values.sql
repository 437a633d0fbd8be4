-- parameters: ["{\"a\",\"b\"}","12","12"]
WITH _cats AS (SELECT c, n FROM unnest($1::text[]) WITH ORDINALITY AS _v(c, n))
SELECT (SELECT coalesce(json_agg(c ORDER BY n), '[]') FROM _cats)::text,
       (SELECT coalesce(json_agg(json_build_object('name', name, 'category', category, 'value', value) ORDER BY name, n), '[]') FROM (
          SELECT (extract(epoch FROM (timestamp '1970-01-01' + make_interval(months => (floor(((extract(year FROM (to_timestamp((_src."pop"::float8 / 1000)) AT TIME ZONE 'UTC')) - 1970) * 12 + extract(month FROM (to_timestamp((_src."pop"::float8 / 1000)) AT TIME ZONE 'UTC')) - 1) / $2::int) * $3::int)::int))) * 1000)::float8 AS name, _src."name"::text AS category, count(*) AS value
          FROM "public"."places" AS _src WHERE _src."pop" IS NOT NULL AND _src."name"::text IN (SELECT c FROM _cats) GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 50001
        ) _t JOIN _cats ON _cats.c = _t.category)::text
