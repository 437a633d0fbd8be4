-- parameters: ["2024"]
(SELECT * FROM "public"."counties" AS _b JOIN (
SELECT * FROM stats.props WHERE year = $1
) AS _p USING ("geoid"))
