-- parameters: ["{\"x\"}","1","2"]
((_src."name"::text = ANY($1::text[])) AND (((_src."pop" >= $2::float8 AND _src."pop" <= $3::float8))))
