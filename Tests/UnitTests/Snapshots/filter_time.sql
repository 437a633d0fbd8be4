-- parameters: ["1700000000000","2024-01-01T00:00:00Z"]
((((_src."updated" >= to_timestamp($1::float8 / 1000) AND _src."updated" <= $2::timestamptz))))
