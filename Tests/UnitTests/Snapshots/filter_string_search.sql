-- parameters: ["50\\%\\_a\\\\b%"]
(((_src."name"::text ILIKE $1)))
