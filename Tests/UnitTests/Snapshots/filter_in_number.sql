-- parameters: ["{\"1\",\"2.5\"}"]
(((_src."pop" = ANY($1::float8[]) OR _src."pop" IS NULL)))
