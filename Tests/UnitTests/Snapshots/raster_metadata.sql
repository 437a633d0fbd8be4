-- parameters: ["\"public\".\"my raster\""]
SELECT obj_description(c.oid, 'pg_class'), c.oid::bigint FROM pg_class c WHERE c.oid = to_regclass($1)
