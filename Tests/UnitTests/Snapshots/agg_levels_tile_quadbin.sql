-- parameters: ["\u0000z","\u0000x","\u0000y","\u0000resolution","\u0000resolution"]
SELECT coalesce(json_agg(json_build_object('id', lpad(to_hex(t.__cell), 16, '0'), 'properties', to_jsonb(t) - '__r' - '__cell' - '__x' - '__y')), '[]')::text, count(*)
FROM carto."tessera_agg_abc_1" t, carto.__quadbin_children_range(carto.quadbin_fromzxy($1::int, $2::bigint, $3::bigint), $4::int) r
WHERE t.__r = $5::int AND t.__cell BETWEEN r.lo AND r.hi
