-- parameters: ["{\"true\"}"]
((_src."capital" = ANY($1::bool[])))
