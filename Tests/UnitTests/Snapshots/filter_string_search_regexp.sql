-- parameters: ["^Z.*a$"]
(((_src."name"::text ~ $1)))
