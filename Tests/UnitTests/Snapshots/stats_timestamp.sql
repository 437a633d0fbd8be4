-- parameters: ["5","{\"false\"}"]
SELECT min(_src."updated")::text, max(_src."updated")::text FROM (
SELECT * FROM places WHERE pop > $1
) AS _src WHERE ((_src."capital" = ANY($2::bool[])))
