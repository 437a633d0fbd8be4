-- parameters: ["\u0000cell"]
SELECT data FROM "public"."my tiles" WHERE cell = $1::bigint
