-- Tessera's offline reference basemap: schema `basemap` in the warehouse (carto_dw), made in one
-- transaction by the script build_basemap.py writes (`zcat basemap.sql.gz | psql -1`): this text, the
-- data as COPY blocks where `@DATA@` stands, then the rest. Sources and licences: NOTICE.
--
-- Zoom bands (one GSHHG resolution each, so low zooms are light): band 0 crude z0-1, 1 low z2-3,
-- 2 intermediate z4-6, 3 high z7+. Geometries are stored in web mercator, cut into small pieces
-- (ST_Subdivide), so a tile clips a few hundred vertices rather than a continent.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS postgis;
DROP SCHEMA IF EXISTS basemap CASCADE;
CREATE SCHEMA basemap;
COMMENT ON SCHEMA basemap IS 'Tessera offline basemap (GSHHG LGPL-3+, DCW LGPL-3+, GeoNames CC BY 4.0, OpenStreetMap ODbL); see NOTICE';

CREATE TABLE basemap.meta (version text NOT NULL, attribution text NOT NULL);
INSERT INTO basemap.meta VALUES ('@VERSION@',
  'Shorelines, rivers, borders: GSHHG (LGPL) · Countries, states: DCW-GMT (LGPL) · Places: GeoNames (CC BY 4.0) · Streets: © OpenStreetMap contributors (ODbL)');

CREATE TABLE basemap.shore_src (band smallint NOT NULL, level smallint NOT NULL, closed boolean NOT NULL, geom geometry(LineString, 4326) NOT NULL);
CREATE TABLE basemap.rivers (band smallint NOT NULL, level smallint NOT NULL, geom geometry NOT NULL);
CREATE TABLE basemap.borders (band smallint NOT NULL, level smallint NOT NULL, geom geometry NOT NULL);
CREATE TABLE basemap.countries (name text NOT NULL, code text NOT NULL, area_km2 bigint NOT NULL, geom geometry NOT NULL);
CREATE TABLE basemap.places (name text NOT NULL, country_code text, population bigint NOT NULL, geom geometry NOT NULL);
CREATE TABLE basemap.roads (class smallint NOT NULL, highway text NOT NULL, name text, geom geometry NOT NULL);
-- @DATA@

-- Web mercator stops at +-85.05 degrees.
-- (Clipping, and repairing, only what needs it: most of the load's time would go there.)
CREATE FUNCTION basemap.to_mercator(g geometry) RETURNS geometry LANGUAGE sql IMMUTABLE AS $$
  SELECT ST_Transform(CASE WHEN ST_YMax(g) < 85.05 AND ST_YMin(g) > -85.05 THEN g
                           ELSE ST_Intersection(g, ST_MakeEnvelope(-180, -85.05, 180, 85.05, 4326)) END, 3857)
$$;
CREATE FUNCTION basemap.valid(g geometry) RETURNS geometry LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN ST_IsValid(g) THEN g ELSE ST_CollectionExtract(ST_MakeValid(g), 3) END
$$;

-- GSHHG levels: 1 land, 2 lake, 3 island in a lake, 4 pond on such an island. Odd levels are land.
CREATE TABLE basemap.land AS
  SELECT band, level, ST_Subdivide(p, 256) AS geom
  FROM (SELECT band, level,
               basemap.valid(basemap.to_mercator(basemap.valid(ST_MakePolygon(geom)))) AS p
        FROM basemap.shore_src WHERE closed) s
  WHERE NOT ST_IsEmpty(p)
  ORDER BY band, ST_GeoHash(ST_Transform(ST_PointOnSurface(p), 4326));
CREATE TABLE basemap.coast AS
  SELECT band, level, ST_Subdivide(basemap.to_mercator(geom), 256) AS geom FROM basemap.shore_src
  WHERE level <= 2;
DROP TABLE basemap.shore_src;
UPDATE basemap.rivers SET geom = basemap.to_mercator(geom);
UPDATE basemap.borders SET geom = basemap.to_mercator(geom);
UPDATE basemap.places SET geom = ST_Transform(geom, 3857) WHERE abs(ST_Y(geom)) < 85.05;
UPDATE basemap.countries SET geom = ST_Transform(geom, 3857) WHERE abs(ST_Y(geom)) < 85.05;
DELETE FROM basemap.countries WHERE ST_SRID(geom) <> 3857;
DELETE FROM basemap.places WHERE ST_SRID(geom) <> 3857;
UPDATE basemap.roads SET geom = ST_Transform(geom, 3857);
DELETE FROM basemap.rivers WHERE ST_IsEmpty(geom);
DELETE FROM basemap.borders WHERE ST_IsEmpty(geom);

CREATE INDEX ON basemap.land USING gist (geom);
CREATE INDEX ON basemap.coast USING gist (geom);
CREATE INDEX ON basemap.rivers USING gist (geom);
CREATE INDEX ON basemap.borders USING gist (geom);
CREATE INDEX ON basemap.places USING gist (geom);
CREATE INDEX ON basemap.countries USING gist (geom);
CREATE INDEX ON basemap.places (population DESC);
CREATE INDEX ON basemap.roads USING gist (geom);

CREATE FUNCTION basemap.band(z integer) RETURNS smallint LANGUAGE sql IMMUTABLE AS $$
  SELECT (CASE WHEN z <= 1 THEN 0 WHEN z <= 3 THEN 1 WHEN z <= 6 THEN 2 ELSE 3 END)::smallint
$$;

-- Places per tile: the most populous first, many more than fit (the client places labels by
-- population with collision handling across tiles); a 64-pixel buffer so labels near a tile edge
-- come from both tiles.
CREATE FUNCTION basemap.places_per_tile(z integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN z <= 1 THEN 40 WHEN z <= 4 THEN 60 WHEN z <= 8 THEN 80 ELSE 150 END
$$;

-- Country labels at z1-z5, the largest countries first (only the large ones at z1-z3, where small
-- ones would crowd them out).
CREATE FUNCTION basemap.country_min_area(z integer) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN z <= 2 THEN 300000 WHEN z = 3 THEN 30000 ELSE 0 END::bigint
$$;

-- One multi-layer Mapbox Vector Tile: land, water (lakes), coast, rivers, boundaries, roads, countries, places.
CREATE FUNCTION basemap.tile(z integer, x integer, y integer) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
  WITH t AS (SELECT ST_TileEnvelope(z, x, y) AS env, ST_TileEnvelope(z, x, y, margin => 64.0 / 4096) AS buf, basemap.band(z) AS band)
  SELECT
    coalesce((SELECT ST_AsMVT(q, 'land', 4096, 'g') FROM (
      SELECT l.level, ST_AsMVTGeom(l.geom, t.env, 4096, 64, true) AS g FROM basemap.land l, t
      WHERE l.band = t.band AND l.level IN (1, 3) AND l.geom && t.buf) q WHERE g IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(q, 'water', 4096, 'g') FROM (
      SELECT l.level, ST_AsMVTGeom(l.geom, t.env, 4096, 64, true) AS g FROM basemap.land l, t
      WHERE l.band = t.band AND l.level IN (2, 4) AND l.geom && t.buf) q WHERE g IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(q, 'coast', 4096, 'g') FROM (
      SELECT c.level, ST_AsMVTGeom(c.geom, t.env, 4096, 64, true) AS g FROM basemap.coast c, t
      WHERE c.band = t.band AND c.geom && t.buf AND (c.level = 1 OR z >= 4)) q WHERE g IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(q, 'rivers', 4096, 'g') FROM (
      SELECT r.level, ST_AsMVTGeom(r.geom, t.env, 4096, 64, true) AS g FROM basemap.rivers r, t
      WHERE r.band = t.band AND r.geom && t.buf
        AND r.level <= CASE WHEN z < 3 THEN 0 WHEN z < 5 THEN 2 WHEN z < 6 THEN 3 WHEN z < 8 THEN 4 ELSE 5 END) q
      WHERE g IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(q, 'boundaries', 4096, 'g') FROM (
      SELECT b.level, ST_AsMVTGeom(b.geom, t.env, 4096, 64, true) AS g FROM basemap.borders b, t
      WHERE b.band = t.band AND b.geom && t.buf AND (b.level = 1 OR z >= 3)) q WHERE g IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(q, 'roads', 4096, 'g') FROM (
      SELECT r.class, r.highway, r.name, ST_AsMVTGeom(r.geom, t.env, 4096, 64, true) AS g FROM basemap.roads r, t
      WHERE z >= 10 AND r.geom && t.buf AND (r.class <= 2 OR z >= 11 AND r.class <= 4 OR z >= 12)) q WHERE g IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(q, 'countries', 4096, 'g') FROM (
      SELECT c.name, c.code, c.area_km2, ST_AsMVTGeom(c.geom, t.env, 4096, 64, true) AS g FROM basemap.countries c, t
      WHERE z BETWEEN 1 AND 5 AND c.geom && t.buf AND c.area_km2 >= basemap.country_min_area(z)
      ORDER BY c.area_km2 DESC LIMIT 60) q WHERE g IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(q, 'places', 4096, 'g') FROM (
      SELECT p.name, p.population, ST_AsMVTGeom(p.geom, t.env, 4096, 64, true) AS g FROM basemap.places p, t
      WHERE p.geom && t.buf ORDER BY p.population DESC LIMIT basemap.places_per_tile(z)) q WHERE g IS NOT NULL), '')
  FROM t
$$;

GRANT USAGE ON SCHEMA basemap TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA basemap TO PUBLIC;
ANALYZE basemap.land; ANALYZE basemap.coast; ANALYZE basemap.rivers; ANALYZE basemap.borders;
ANALYZE basemap.places; ANALYZE basemap.roads; ANALYZE basemap.countries;
