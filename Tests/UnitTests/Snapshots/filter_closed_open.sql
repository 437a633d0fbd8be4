-- parameters: ["1","10"]
((((_src."pop" >= $1::float8 AND _src."pop" < $2::float8))))
