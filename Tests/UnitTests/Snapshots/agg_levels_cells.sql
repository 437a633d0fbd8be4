-- parameters: ["\u0000resolution"]
SELECT * FROM carto."tessera_agg_abc_1" WHERE __r = $1::int
