-- parameters: ["7","12.5"]
SELECT * FROM "tessera_wf_x"."In ""Put""" t WHERE (abs(hashtext(t::text || $1::text)::bigint) % 1000000) < CAST($2 AS float8) * 10000
