-- parameters: ["\u0000resolution","\u0000lo","\u0000hi"]
SELECT coalesce('[' || string_agg(t.__json, ',') || ']', '[]'), count(*)
FROM carto."tessera_agg_abc_1" t
WHERE t.__r = $1::int AND t.__cell BETWEEN $2::bigint AND $3::bigint
