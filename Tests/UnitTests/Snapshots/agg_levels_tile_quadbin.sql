-- parameters: ["\u0000resolution","\u0000lo","\u0000hi"]
SELECT coalesce(json_agg(json_build_object('id', lpad(to_hex(t.__cell), 16, '0'), 'properties', to_jsonb(t) - '__r' - '__cell' - '__x' - '__y')), '[]')::text, count(*)
FROM carto."tessera_agg_abc_1" t
WHERE t.__r = $1::int AND t.__cell BETWEEN $2::bigint AND $3::bigint
