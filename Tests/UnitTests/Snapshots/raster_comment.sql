-- parameters: ["\"public\".\"my raster\"","tessera_raster:{\"bands\":[]}"]
SELECT format('COMMENT ON TABLE %s IS %L', $1::regclass, $2::text)
