-- parameters: ["{\"a\",\"b\\\"c\",\"d\\\\e\"}"]
((_src."name"::text = ANY($1::text[])))
