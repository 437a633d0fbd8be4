-- Tessera's offline reference basemap: schema `basemap` in the warehouse (carto_dw), made in one
-- transaction by the script build_basemap.py writes (`zcat basemap.sql.gz | psql -1`): this text, the
-- data as COPY blocks where `@DATA@` stands, then the rest. Sources and licences: NOTICE.
--
-- Zoom bands (one GSHHG resolution each, so low zooms are light): band 0 crude z0-1, 1 low z2-3,
-- 2 intermediate z4-6, 3 high z7+. Land, water and coast have two more where the OpenStreetMap extract
-- covers the map: GSHHG's high resolution is coarse at street scale, so inside the extract's box (less the
-- caps where its edge would show as a shore, see osm_region) z12+ draws OpenStreetMap's shore (band 4) and
-- GSHHG's (band 5) is kept for z7-11. Geometries are stored in web mercator, cut into small pieces
-- (ST_Subdivide), so a tile clips a few hundred vertices rather than a continent.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS postgis;
DROP SCHEMA IF EXISTS basemap CASCADE;
CREATE SCHEMA basemap;
COMMENT ON SCHEMA basemap IS 'Tessera offline basemap (GSHHG LGPL-3+, DCW LGPL-3+, Natural Earth public domain via QGIS GPL-2+, GeoNames CC BY 4.0, OpenStreetMap ODbL); see NOTICE';

CREATE TABLE basemap.meta (version text NOT NULL, attribution text NOT NULL);
INSERT INTO basemap.meta VALUES ('@VERSION@',
  'Shorelines, rivers, borders: GSHHG (LGPL) · Countries, states: DCW-GMT (LGPL) · States: Natural Earth, QGIS · Places: GeoNames (CC BY 4.0) · Streets: © OpenStreetMap contributors (ODbL)');

CREATE TABLE basemap.shore_src (band smallint NOT NULL, level smallint NOT NULL, closed boolean NOT NULL, geom geometry(LineString, 4326) NOT NULL);
CREATE TABLE basemap.rivers (band smallint NOT NULL, level smallint NOT NULL, geom geometry NOT NULL);
CREATE TABLE basemap.borders (band smallint NOT NULL, level smallint NOT NULL, geom geometry NOT NULL);
CREATE TABLE basemap.countries (name text NOT NULL, code text NOT NULL, area_km2 bigint NOT NULL, geom geometry NOT NULL);
CREATE TABLE basemap.places (name text NOT NULL, country_code text, population bigint NOT NULL, geom geometry NOT NULL);
CREATE TABLE basemap.roads (class smallint NOT NULL, highway text NOT NULL, name text, geom geometry NOT NULL);
-- The OpenStreetMap extract's box, and its shore: kind coastline (a run with land on its left, cut at the
-- box), water / island (whole areas), water_edge / island_edge (what the box leaves of a cut area's outline).
CREATE TABLE basemap.osm_extent (geom geometry NOT NULL);
CREATE TABLE basemap.osm_src (kind text NOT NULL, geom geometry NOT NULL);
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

-- Land and water from OpenStreetMap inside the extract's box. The box's edge and the coastline runs cut
-- it into faces; a face is land when it lies left of its nearest coastline (OpenStreetMap's rule), or,
-- with no coastline in the box, when GSHHG has land there. A water area the box cuts (only part of its
-- outline is inside) becomes the faces beside that outline that hold (almost) no streets.
CREATE TABLE basemap.osm_area AS SELECT ST_Transform(geom, 3857) AS geom FROM basemap.osm_extent;
UPDATE basemap.osm_src SET geom = ST_Transform(geom, 3857);
CREATE FUNCTION basemap.left_of(line geometry, p geometry) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT (ST_X(b) - ST_X(a)) * (ST_Y(p) - ST_Y(q)) - (ST_Y(b) - ST_Y(a)) * (ST_X(p) - ST_X(q)) > 0
  FROM (SELECT ST_ClosestPoint(line, p) AS q, ST_LineLocatePoint(line, p) AS f, 0.5 / greatest(ST_Length(line), 1) AS d) s,
  LATERAL (SELECT ST_LineInterpolatePoint(line, greatest(0, f - d)) AS a, ST_LineInterpolatePoint(line, least(1, f + d)) AS b) e
$$;
CREATE FUNCTION basemap.faces(cut text) RETURNS SETOF geometry LANGUAGE sql STABLE AS $$
  SELECT (ST_Dump(ST_Polygonize(g))).geom FROM (
    SELECT ST_Union(ST_ExteriorRing(a.geom), coalesce(ST_Collect(s.geom), ST_GeomFromText('LINESTRING EMPTY', 3857))) AS g
    FROM basemap.osm_area a LEFT JOIN basemap.osm_src s ON s.kind = cut GROUP BY a.geom) n
$$;
CREATE TABLE basemap.osm_land AS
  SELECT f AS geom FROM basemap.faces('coastline') f, LATERAL (SELECT ST_PointOnSurface(f) AS p) pt
  WHERE coalesce((SELECT basemap.left_of(c.geom, pt.p) FROM basemap.osm_src c WHERE c.kind = 'coastline'
                  ORDER BY ST_Distance(c.geom, pt.p) LIMIT 1),
                 EXISTS (SELECT FROM basemap.land l WHERE l.band = 3 AND l.level = 1 AND ST_Intersects(l.geom, pt.p))
                 AND NOT EXISTS (SELECT FROM basemap.land l WHERE l.band = 3 AND l.level = 2 AND ST_Intersects(l.geom, pt.p)));
CREATE TABLE basemap.osm_water AS
  SELECT level, geom FROM (
    SELECT CASE WHEN s.kind = 'water' THEN 2 ELSE 3 END AS level, s.geom FROM basemap.osm_src s WHERE s.kind IN ('water', 'island')
    UNION ALL
    SELECT CASE WHEN e.kind = 'water_edge' THEN 2 ELSE 3 END, f
    FROM (VALUES ('water_edge'), ('island_edge')) e(kind), basemap.faces(e.kind) f
    WHERE EXISTS (SELECT FROM basemap.osm_src s WHERE s.kind = e.kind AND ST_Length(ST_Intersection(s.geom, ST_Boundary(f))) > 1)
      AND (SELECT coalesce(sum(ST_Length(ST_Intersection(r.geom, f))), 0) FROM basemap.roads r WHERE r.geom && f) / ST_Area(f)
        < 0.2 * (SELECT sum(ST_Length(ST_Intersection(r.geom, a.geom))) / ST_Area(a.geom) FROM basemap.roads r, basemap.osm_area a GROUP BY a.geom)
  ) w;
-- Where the box's edge has OpenStreetMap's water on it and GSHHG's land beyond it (or the reverse), the two
-- would meet in a straight shore along the box: central Helsinki's bay runs out of the extract, and GSHHG has
-- no bay there. At each such stretch of the edge GSHHG keeps a cap of the box: the disc round the middle of
-- the stretch's ends (radius 0.65 of their distance, not 0.5: a half-disc leaves horns of water where the
-- shores widen into the box), the corner when the stretch turns one, and the slivers of disagreement left
-- beside it. OpenStreetMap draws the rest (osm_region): the sources meet only where they agree, and the cut
-- water ends in a rounded shore a little inside the box.
CREATE TABLE basemap.osm_levels AS
  SELECT 'osm' AS src, 1 AS level, ST_Union(geom) AS geom FROM basemap.osm_land
  UNION ALL SELECT 'osm', level, ST_Union(geom) FROM basemap.osm_water GROUP BY level
  UNION ALL SELECT 'gshhg', l.level, ST_Union(ST_Intersection(l.geom, a.geom))
            FROM basemap.land l, basemap.osm_area a WHERE l.band = 3 AND l.geom && a.geom GROUP BY l.level;
-- What a source paints as water in the box: its levels in painting order, odd ones land, even ones water.
CREATE FUNCTION basemap.water_in(src text) RETURNS geometry LANGUAGE sql STABLE AS $$
  SELECT ST_CollectionExtract(ST_Intersection(a.geom, ST_Union(ST_Difference(ST_Union(ST_Difference(a.geom, g[1]), g[2]), g[3]), g[4])), 3)
  FROM basemap.osm_area a, (SELECT array_agg(coalesce((SELECT ST_Union(l.geom) FROM basemap.osm_levels l WHERE l.src = water_in.src AND l.level = n),
                                                      ST_SetSRID('POLYGON EMPTY'::geometry, 3857)) ORDER BY n) AS g
                            FROM generate_series(1, 4) n) s
$$;
CREATE TABLE basemap.osm_cap AS
  WITH w AS (SELECT basemap.water_in('osm') AS osm, basemap.water_in('gshhg') AS gshhg),
  d AS (SELECT ST_SymDifference(osm, gshhg) AS geom FROM w),
  caps AS (
    SELECT coalesce(ST_Union(ST_Intersection(a.geom, ST_Union(ST_Buffer(ST_LineInterpolatePoint(ST_MakeLine(e.a, e.b), 0.5), ST_Distance(e.a, e.b) * 0.65),
                                                              ST_ConvexHull(e.s)))),
                    ST_SetSRID('POLYGON EMPTY'::geometry, 3857)) AS geom
    FROM basemap.osm_area a, d,
         LATERAL (SELECT s.geom AS s, ST_StartPoint(s.geom) AS a, ST_EndPoint(s.geom) AS b
                  FROM ST_Dump(ST_LineMerge(ST_CollectionExtract(ST_Intersection(ST_Boundary(a.geom), d.geom), 2))) s) e
    WHERE ST_Length(e.s) > 4),  -- shorter ones are the two sources' rounding along the box, not water
  left_over AS (SELECT ST_Difference(d.geom, c.geom) AS geom FROM d, caps c)
  SELECT ST_Union(c.geom, ST_Intersection(ST_Difference(l.geom, ST_Buffer(ST_Buffer(l.geom, -10), 10)), ST_Buffer(c.geom, 20))) AS geom, w.osm, w.gshhg
  FROM caps c, left_over l, w;
CREATE TABLE basemap.osm_region AS SELECT ST_Difference(a.geom, c.geom) AS geom FROM basemap.osm_area a, basemap.osm_cap c;
-- GSHHG's high band inside that region moves to band 5 (z7-11); OpenStreetMap's land, water and coastline are band 4.
INSERT INTO basemap.land (band, level, geom)
  SELECT 5, l.level, g FROM basemap.land l, basemap.osm_region a, LATERAL ST_CollectionExtract(ST_Intersection(l.geom, a.geom), 3) g
  WHERE l.band = 3 AND l.geom && a.geom AND NOT ST_IsEmpty(g);
UPDATE basemap.land l SET geom = ST_CollectionExtract(ST_Difference(l.geom, a.geom), 3) FROM basemap.osm_region a WHERE l.band = 3 AND l.geom && a.geom;
INSERT INTO basemap.coast (band, level, geom)
  SELECT 5, c.level, g FROM basemap.coast c, basemap.osm_region a, LATERAL ST_CollectionExtract(ST_Intersection(c.geom, a.geom), 2) g
  WHERE c.band = 3 AND c.geom && a.geom AND NOT ST_IsEmpty(g);
UPDATE basemap.coast c SET geom = ST_CollectionExtract(ST_Difference(c.geom, a.geom), 2) FROM basemap.osm_region a WHERE c.band = 3 AND c.geom && a.geom;
INSERT INTO basemap.land (band, level, geom)
  SELECT 4, level, ST_Subdivide(g, 256) FROM (
    SELECT 1 AS level, geom FROM basemap.osm_land UNION ALL SELECT level, geom FROM basemap.osm_water) o,
    basemap.osm_region a, LATERAL ST_CollectionExtract(ST_Intersection(o.geom, a.geom), 3) g
  WHERE NOT ST_IsEmpty(g);
-- The shore is the outline of the water drawn in the box (OpenStreetMap's in the region, GSHHG's in the caps),
-- less the box's edge and what lies inside the caps (band 3 has GSHHG's there): OpenStreetMap's shore and the
-- caps' edges where the two disagree (cut from the source lines instead, a shore would go on where a cap took
-- its water), without the hairlines of water under a metre wide a cap leaves along its edge.
INSERT INTO basemap.coast (band, level, geom)
  SELECT 4, 1, ST_Subdivide(ST_CollectionExtract(ST_Difference(ST_Intersection(ST_Boundary(w), ST_Buffer(a.geom, -1)), ST_Buffer(c.geom, -0.5)), 2), 256)
  FROM basemap.osm_cap c, basemap.osm_region r, basemap.osm_area a,
       LATERAL ST_Buffer(ST_Buffer(ST_CollectionExtract(ST_Union(ST_Intersection(c.osm, r.geom), ST_Intersection(c.gshhg, c.geom)), 3),
                                   -1, 'join=mitre'), 1, 'join=mitre') w;
DELETE FROM basemap.land WHERE ST_IsEmpty(geom);
DELETE FROM basemap.coast WHERE ST_IsEmpty(geom);
DROP TABLE basemap.osm_land, basemap.osm_water, basemap.osm_src, basemap.osm_extent, basemap.osm_levels, basemap.osm_cap, basemap.osm_region;
DROP FUNCTION basemap.faces(text), basemap.left_of(geometry, geometry), basemap.water_in(text);

-- Street names are placed along a street, not along each block's way: a street's ways merged by name
-- (one line per connected piece), longest first.
CREATE TABLE basemap.street_names AS
  SELECT row_number() OVER (ORDER BY ST_Length(geom) DESC, name) AS id, name, class, ST_Length(geom) AS len, geom FROM (
    SELECT name, min(class) AS class, (ST_Dump(ST_LineMerge(ST_Collect(geom)))).geom AS geom
    FROM basemap.roads WHERE name IS NOT NULL GROUP BY name) s;
DELETE FROM basemap.borders WHERE ST_IsEmpty(geom);

CREATE INDEX ON basemap.land USING gist (geom);
CREATE INDEX ON basemap.coast USING gist (geom);
CREATE INDEX ON basemap.rivers USING gist (geom);
CREATE INDEX ON basemap.borders USING gist (geom);
CREATE INDEX ON basemap.places USING gist (geom);
CREATE INDEX ON basemap.countries USING gist (geom);
CREATE INDEX ON basemap.places (population DESC);
CREATE INDEX ON basemap.roads USING gist (geom);
CREATE INDEX ON basemap.street_names USING gist (geom);

CREATE FUNCTION basemap.band(z integer) RETURNS smallint LANGUAGE sql IMMUTABLE AS $$
  SELECT (CASE WHEN z <= 1 THEN 0 WHEN z <= 3 THEN 1 WHEN z <= 6 THEN 2 ELSE 3 END)::smallint
$$;
-- Land, water and coast: the band, and inside the OpenStreetMap extract's box GSHHG (5) below z12, OpenStreetMap (4) from z12.
CREATE FUNCTION basemap.shore_bands(z integer) RETURNS smallint[] LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN z <= 6 THEN ARRAY[basemap.band(z)] WHEN z <= 11 THEN '{3,5}' ELSE '{3,4}' END::smallint[]
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

-- One multi-layer Mapbox Vector Tile: land, water (lakes), coast, rivers, boundaries, roads, street_names,
-- countries, places. A street's name line comes whole (not clipped) in every tile it crosses, with its id:
-- the client places each name once, along the line, wherever it fits on screen (main roads from z12,
-- all named streets from z13, only lines of 40 pixels or more).
CREATE FUNCTION basemap.tile(z integer, x integer, y integer) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
  WITH t AS (SELECT ST_TileEnvelope(z, x, y) AS env, ST_TileEnvelope(z, x, y, margin => 64.0 / 4096) AS buf, basemap.band(z) AS band, basemap.shore_bands(z) AS shore)
  SELECT
    coalesce((SELECT ST_AsMVT(q, 'land', 4096, 'g') FROM (
      SELECT l.level, l.band = 4 AS osm, ST_AsMVTGeom(l.geom, t.env, 4096, 64, true) AS g FROM basemap.land l, t
      WHERE l.band = ANY(t.shore) AND l.level IN (1, 3) AND l.geom && t.buf) q WHERE g IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(q, 'water', 4096, 'g') FROM (
      SELECT l.level, l.band = 4 AS osm, ST_AsMVTGeom(l.geom, t.env, 4096, 64, true) AS g FROM basemap.land l, t
      WHERE l.band = ANY(t.shore) AND l.level IN (2, 4) AND l.geom && t.buf) q WHERE g IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(q, 'coast', 4096, 'g') FROM (
      SELECT c.level, ST_AsMVTGeom(c.geom, t.env, 4096, 64, true) AS g FROM basemap.coast c, t
      WHERE c.band = ANY(t.shore) AND c.geom && t.buf AND (c.level = 1 OR z >= 4)) q WHERE g IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(q, 'rivers', 4096, 'g') FROM (
      SELECT r.level, ST_AsMVTGeom(r.geom, t.env, 4096, 64, true) AS g FROM basemap.rivers r, t
      WHERE r.band = t.band AND r.geom && t.buf
        AND r.level <= CASE WHEN z < 3 THEN 0 WHEN z < 5 THEN 2 WHEN z < 6 THEN 3 WHEN z < 8 THEN 4 ELSE 5 END) q
      WHERE g IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(q, 'boundaries', 4096, 'g') FROM (
      SELECT b.level, ST_AsMVTGeom(b.geom, t.env, 4096, 64, true) AS g FROM basemap.borders b, t
      WHERE b.band = t.band AND b.geom && t.buf AND (b.level = 1 OR z >= 3)) q WHERE g IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(q, 'roads', 4096, 'g') FROM (
      SELECT r.class, r.highway, ST_AsMVTGeom(r.geom, t.env, 4096, 64, true) AS g FROM basemap.roads r, t
      WHERE z >= 10 AND r.geom && t.buf AND (r.class <= 2 OR z >= 11 AND r.class <= 4 OR z >= 12)) q WHERE g IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(q, 'street_names', 4096, 'g') FROM (
      SELECT s.id, s.name, s.class, ST_AsMVTGeom(s.geom, t.env, 4096, 0, false) AS g FROM basemap.street_names s, t
      WHERE z >= 12 AND s.geom && t.env AND (s.class <= 3 OR z >= 13)
        AND s.len * 256 / (ST_XMax(t.env) - ST_XMin(t.env)) >= 40) q WHERE g IS NOT NULL), '')
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
ANALYZE basemap.places; ANALYZE basemap.roads; ANALYZE basemap.countries; ANALYZE basemap.street_names;
