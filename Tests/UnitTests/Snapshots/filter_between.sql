-- parameters: ["1","10","5","20"]
((((_src."pop" >= $1::float8 AND _src."pop" <= $2::float8) OR (_src."pop" <= $3::float8) OR (_src."pop" >= $4::float8))))
