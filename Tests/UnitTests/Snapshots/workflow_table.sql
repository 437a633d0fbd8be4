-- parameters: []
SELECT * FROM "sales"."My Table"
