-- Local routing and isolines: pgRouting over a road graph built from an OSM extract.
-- `tessera lds load-roads --osm FILE` runs osm2pgrouting into the staging schema carto_lds_osm and then
-- calls carto_lds.build_road_graph(), which turns the staging tables into carto_lds.road_edges and
-- carto_lds.road_vertices with a cost per travel mode. Every statement is idempotent.
-- The pgrouting extension is not a trusted extension: a superuser creates it (`CREATE EXTENSION pgrouting`);
-- the plpgsql bodies below only need it when they run.
--
-- Errors carry their own SQLSTATEs (class LD) so the API maps them by code, never by message:
--   LD001 no road graph loaded, LD002 point too far from the graph, LD003 no route, LD004 bad argument.
CREATE SCHEMA IF NOT EXISTS carto_lds;
CREATE SCHEMA IF NOT EXISTS carto_lds_osm;

-- Speed per OSM highway class and travel mode, km/h. NULL: the mode may not use that class.
-- Admins may edit it; the speeds apply from the next build_road_graph().
CREATE TABLE IF NOT EXISTS carto_lds.road_speeds (
    class text PRIMARY KEY,
    car_kmh double precision CHECK (car_kmh > 0),
    walk_kmh double precision CHECK (walk_kmh > 0)
);
-- ON CONFLICT DO NOTHING: re-applying this file keeps an admin's edits.
INSERT INTO carto_lds.road_speeds (class, car_kmh, walk_kmh) VALUES
    ('motorway', 110, NULL), ('motorway_link', 60, NULL), ('trunk', 90, NULL), ('trunk_link', 50, NULL),
    ('primary', 70, 5), ('primary_link', 40, 5), ('secondary', 60, 5), ('secondary_link', 40, 5),
    ('tertiary', 50, 5), ('tertiary_link', 30, 5), ('unclassified', 40, 5), ('road', 40, 5),
    ('residential', 30, 5), ('living_street', 10, 5), ('service', 20, 5), ('services', 20, 5),
    ('track', 15, 4.5), ('pedestrian', NULL, 5), ('footway', NULL, 5), ('path', NULL, 4.5),
    ('steps', NULL, 2), ('bridleway', NULL, 4.5), ('cycleway', NULL, 5), ('byway', NULL, 4.5)
ON CONFLICT (class) DO NOTHING;

-- Which graph is loaded: one row, replaced by every build.
CREATE TABLE IF NOT EXISTS carto_lds.road_graph (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    source text NOT NULL,
    edges bigint NOT NULL,
    vertices bigint NOT NULL,
    -- The top speed per mode on the graph bounds how far an isoline can reach (its search box).
    car_max_kmh double precision,
    walk_max_kmh double precision,
    loaded_at timestamptz NOT NULL DEFAULT now()
);

-- Builds carto_lds.road_edges/road_vertices from osm2pgrouting's tables in carto_lds_osm and swaps them in
-- within the caller's transaction. Costs are seconds; -1 means "not in this direction" (pgRouting's
-- convention): a one-way street is closed against its direction for cars, never for walkers.
CREATE OR REPLACE FUNCTION carto_lds.build_road_graph(source text)
RETURNS TABLE (edges bigint, vertices bigint)
LANGUAGE plpgsql SET client_min_messages = warning AS $$
DECLARE
    n_edges bigint;
    n_vertices bigint;
BEGIN
    IF to_regclass('carto_lds_osm.ways') IS NULL THEN
        RAISE EXCEPTION 'no osm2pgrouting import found in carto_lds_osm' USING ERRCODE = 'LD001';
    END IF;
    DROP TABLE IF EXISTS carto_lds.road_edges_next, carto_lds.road_vertices_next;
    CREATE TABLE carto_lds.road_edges_next AS
    SELECT w.gid AS id, w.source, w.target, c.tag_value AS class, w.name,
           l.length_m,
           CASE WHEN s.car_kmh IS NULL OR w.one_way = -1 THEN -1 ELSE l.length_m / (s.car_kmh / 3.6) END AS car_cost,
           CASE WHEN s.car_kmh IS NULL OR w.one_way = 1 THEN -1 ELSE l.length_m / (s.car_kmh / 3.6) END AS car_reverse_cost,
           CASE WHEN s.walk_kmh IS NULL THEN -1 ELSE l.length_m / (s.walk_kmh / 3.6) END AS walk_cost,
           w.the_geom AS geom
      FROM carto_lds_osm.ways w
      JOIN carto_lds_osm.configuration c ON c.tag_id = w.tag_id
      JOIN carto_lds.road_speeds s ON s.class = c.tag_value
      CROSS JOIN LATERAL (SELECT ST_Length(w.the_geom::geography) AS length_m) l
     WHERE c.tag_key = 'highway' AND (s.car_kmh IS NOT NULL OR s.walk_kmh IS NOT NULL);
    ALTER TABLE carto_lds.road_edges_next ADD PRIMARY KEY (id);
    CREATE INDEX ON carto_lds.road_edges_next USING gist (geom);
    CREATE INDEX ON carto_lds.road_edges_next (source);
    CREATE INDEX ON carto_lds.road_edges_next (target);

    -- A vertex knows which modes can use it, so a point snaps to a vertex its mode can leave.
    CREATE TABLE carto_lds.road_vertices_next AS
    SELECT v.id, v.the_geom AS geom,
           bool_or(e.car_cost >= 0 OR e.car_reverse_cost >= 0) AS car,
           bool_or(e.walk_cost >= 0) AS walk
      FROM carto_lds_osm.ways_vertices_pgr v
      JOIN carto_lds.road_edges_next e ON v.id IN (e.source, e.target)
     GROUP BY v.id, v.the_geom;
    ALTER TABLE carto_lds.road_vertices_next ADD PRIMARY KEY (id);
    CREATE INDEX ON carto_lds.road_vertices_next USING gist (geom);

    DROP TABLE IF EXISTS carto_lds.road_edges, carto_lds.road_vertices;
    ALTER TABLE carto_lds.road_edges_next RENAME TO road_edges;
    ALTER TABLE carto_lds.road_vertices_next RENAME TO road_vertices;
    SELECT count(*) INTO n_edges FROM carto_lds.road_edges;
    SELECT count(*) INTO n_vertices FROM carto_lds.road_vertices;
    INSERT INTO carto_lds.road_graph (source, edges, vertices, car_max_kmh, walk_max_kmh)
    SELECT build_road_graph.source, n_edges, n_vertices,
           max(s.car_kmh) FILTER (WHERE e.car_cost >= 0 OR e.car_reverse_cost >= 0), max(s.walk_kmh) FILTER (WHERE e.walk_cost >= 0)
      FROM carto_lds.road_edges e JOIN carto_lds.road_speeds s USING (class)
    ON CONFLICT (only_row) DO UPDATE SET source = EXCLUDED.source, edges = EXCLUDED.edges, vertices = EXCLUDED.vertices,
                                         car_max_kmh = EXCLUDED.car_max_kmh, walk_max_kmh = EXCLUDED.walk_max_kmh, loaded_at = now();
    ANALYZE carto_lds.road_edges;
    ANALYZE carto_lds.road_vertices;
    RETURN QUERY SELECT n_edges, n_vertices;
END $$;

-- The pgRouting edges query of a mode and range type, limited to a bounding box (degrees) so that a
-- country-sized graph is not read whole. Only numbers are formatted into it.
CREATE OR REPLACE FUNCTION carto_lds.__edges_sql(mode text, range_type text, box geometry)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    fwd text;
    rev text;
BEGIN
    IF to_regclass('carto_lds.road_edges') IS NULL THEN
        RAISE EXCEPTION 'no road graph loaded' USING ERRCODE = 'LD001';
    END IF;
    IF mode = 'car' THEN
        fwd := 'car_cost'; rev := 'car_reverse_cost';
    ELSIF mode = 'walk' THEN
        fwd := 'walk_cost'; rev := 'walk_cost';
    ELSE
        RAISE EXCEPTION 'unknown mode %', mode USING ERRCODE = 'LD004';
    END IF;
    IF range_type = 'distance' THEN
        fwd := format('CASE WHEN %s < 0 THEN -1 ELSE length_m END', fwd);
        rev := format('CASE WHEN %s < 0 THEN -1 ELSE length_m END', rev);
    ELSIF range_type <> 'time' THEN
        RAISE EXCEPTION 'unknown range type %', range_type USING ERRCODE = 'LD004';
    END IF;
    RETURN format('SELECT id, source, target, %s AS cost, %s AS reverse_cost FROM carto_lds.road_edges '
                  'WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)',
                  fwd, rev, ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box));
END $$;

-- The graph vertex nearest to a point that the mode can use, within max_m metres.
CREATE OR REPLACE FUNCTION carto_lds.__snap(mode text, lon double precision, lat double precision, what text,
                                            max_m double precision DEFAULT 2000)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    p geometry := ST_SetSRID(ST_MakePoint(lon, lat), 4326);
    vid bigint;
    gap double precision;
BEGIN
    SELECT v.id, ST_DistanceSphere(v.geom, p) INTO vid, gap
      FROM carto_lds.road_vertices v
     WHERE CASE WHEN mode = 'car' THEN v.car ELSE v.walk END
     ORDER BY v.geom <-> p LIMIT 1;
    IF vid IS NULL OR gap > max_m THEN
        RAISE EXCEPTION '% (%, %) is more than % m from the loaded road graph', what, lon, lat, max_m
            USING ERRCODE = 'LD002';
    END IF;
    RETURN vid;
END $$;

-- Degrees that cover `metres` around latitude `lat` (longitude degrees shrink with cos(lat)).
CREATE OR REPLACE FUNCTION carto_lds.__degrees(metres double precision, lat double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT metres / 111320.0 / greatest(cos(radians(least(abs(lat), 85))), 0.05)
$$;

-- The fastest route (cars) or shortest walk through the points in order (origin, waypoints…, destination).
-- Returns the line as GeoJSON in travel order, its length in metres and its duration in seconds.
CREATE OR REPLACE FUNCTION carto_lds.route(mode text, lons double precision[], lats double precision[])
RETURNS TABLE (geojson text, distance_m double precision, duration_s double precision)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    vids bigint[] := '{}';
    v bigint;
    n int := coalesce(array_length(lons, 1), 0);
    pts geometry;
    box geometry;
    edges_sql text;
BEGIN
    IF n < 2 OR n <> coalesce(array_length(lats, 1), 0) THEN
        RAISE EXCEPTION 'a route needs an origin and a destination' USING ERRCODE = 'LD004';
    END IF;
    PERFORM carto_lds.__edges_sql(mode, 'time', ST_MakeEnvelope(0, 0, 0, 0, 4326));  -- checks graph and mode first
    FOR i IN 1..n LOOP
        v := carto_lds.__snap(mode, lons[i], lats[i], CASE i WHEN 1 THEN 'origin' WHEN n THEN 'destination' ELSE 'waypoint ' || (i - 1) END);
        -- Points that snap to the crossing before them add no leg (pgRouting would find no path for it).
        IF v IS DISTINCT FROM vids[array_length(vids, 1)] THEN
            vids := vids || v;
        END IF;
    END LOOP;
    SELECT ST_Collect(ST_SetSRID(ST_MakePoint(x, y), 4326)) INTO pts FROM unnest(lons, lats) AS u(x, y);
    -- Detours leave the points' box: search a margin of half its diagonal, and at least 5 km.
    box := ST_Expand(ST_Envelope(pts), greatest(carto_lds.__degrees(5000, ST_Y(ST_Centroid(pts))),
                                               0.5 * sqrt(power(ST_XMax(pts) - ST_XMin(pts), 2) + power(ST_YMax(pts) - ST_YMin(pts), 2))));
    edges_sql := carto_lds.__edges_sql(mode, 'time', box);

    RETURN QUERY
    WITH path AS (
        SELECT p.seq, p.node, p.edge, p.cost
          FROM pgr_dijkstraVia(edges_sql, vids, directed => true, strict => true, U_turn_on_edge => true) p
    ), legs AS (
        SELECT path.seq, e.length_m, path.cost,
               CASE WHEN path.node = e.source THEN e.geom ELSE ST_Reverse(e.geom) END AS g
          FROM path JOIN carto_lds.road_edges e ON e.id = path.edge
    )
    SELECT ST_AsGeoJSON(ST_MakeLine(legs.g ORDER BY legs.seq), 7), sum(legs.length_m), sum(legs.cost)
      FROM legs
    HAVING count(*) > 0;
    IF NOT FOUND THEN
        IF array_length(vids, 1) = 1 THEN
            -- Every point snaps to the same crossing: a zero-length route there.
            RETURN QUERY SELECT ST_AsGeoJSON(ST_MakeLine(rv.geom, rv.geom), 7), 0::double precision, 0::double precision
              FROM carto_lds.road_vertices rv WHERE rv.id = vids[1];
        ELSE
            RAISE EXCEPTION 'no % route connects these points on the loaded road graph', mode USING ERRCODE = 'LD003';
        END IF;
    END IF;
END $$;

-- The areas reachable from a point within each budget: seconds (range_type time) or metres (distance).
-- One area is the concave hull of the network reachable within its budget, including the reachable part
-- of edges left half-way. One pgRouting search serves every budget.
CREATE OR REPLACE FUNCTION carto_lds.isolines(mode text, lon double precision, lat double precision,
                                              budgets double precision[], range_type text)
RETURNS TABLE (budget double precision, geojson text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    start bigint;
    widest double precision := (SELECT max(b) FROM unnest(budgets) b);
    reach_m double precision;
    box geometry;
    edges_sql text;
    fast_kmh double precision;
    seg_deg double precision;
BEGIN
    IF widest IS NULL OR NOT (SELECT bool_and(b > 0) FROM unnest(budgets) b) THEN
        RAISE EXCEPTION 'every range must be positive' USING ERRCODE = 'LD004';
    END IF;
    PERFORM carto_lds.__edges_sql(mode, range_type, ST_MakeEnvelope(0, 0, 0, 0, 4326));
    start := carto_lds.__snap(mode, lon, lat, 'origin');
    IF range_type = 'time' THEN
        SELECT CASE WHEN mode = 'car' THEN g.car_max_kmh ELSE g.walk_max_kmh END INTO fast_kmh FROM carto_lds.road_graph g;
        reach_m := widest * fast_kmh / 3.6;
    ELSE
        reach_m := widest;
    END IF;
    box := ST_Expand(ST_SetSRID(ST_MakePoint(lon, lat), 4326), carto_lds.__degrees(reach_m + 2000, lat));
    edges_sql := carto_lds.__edges_sql(mode, range_type, box);
    -- Hull points every 1/100 of the reach (at least 25 m): detail scales with the area, cost stays bounded.
    seg_deg := carto_lds.__degrees(greatest(25, reach_m / 100), lat);

    RETURN QUERY
    WITH costs AS (
        SELECT d.node, d.agg_cost FROM pgr_drivingDistance(edges_sql, start, widest, directed => true) d
    ), edges AS (
        -- The same costs as edges_sql, here as columns.
        SELECT e.geom, e.source, e.target,
               CASE WHEN m.f < 0 THEN -1 WHEN range_type = 'distance' THEN e.length_m ELSE m.f END AS fwd,
               CASE WHEN m.r < 0 THEN -1 WHEN range_type = 'distance' THEN e.length_m ELSE m.r END AS rev
          FROM carto_lds.road_edges e
         CROSS JOIN LATERAL (SELECT CASE WHEN mode = 'car' THEN e.car_cost ELSE e.walk_cost END AS f,
                                    CASE WHEN mode = 'car' THEN e.car_reverse_cost ELSE e.walk_cost END AS r) m
         WHERE e.geom && box
    ), parts AS (
        -- Per edge and budget: the share reachable forwards from its source and backwards from its target.
        -- An edge covered from both ends counts once, whole; otherwise its reachable ends.
        SELECT b.b AS budget, e.geom, least(1, f.f) AS f, least(1, r.r) AS r
          FROM unnest(budgets) b(b)
         CROSS JOIN edges e
          LEFT JOIN costs cs ON cs.node = e.source
          LEFT JOIN costs ct ON ct.node = e.target
         CROSS JOIN LATERAL (SELECT CASE WHEN e.fwd < 0 OR cs.agg_cost IS NULL OR cs.agg_cost >= b.b THEN 0
                                         WHEN e.fwd = 0 THEN 1 ELSE (b.b - cs.agg_cost) / e.fwd END) f(f)
         CROSS JOIN LATERAL (SELECT CASE WHEN e.rev < 0 OR ct.agg_cost IS NULL OR ct.agg_cost >= b.b THEN 0
                                         WHEN e.rev = 0 THEN 1 ELSE (b.b - ct.agg_cost) / e.rev END) r(r)
         WHERE (cs.node IS NOT NULL OR ct.node IS NOT NULL) AND (f.f > 0 OR r.r > 0)
    ), pieces AS (
        SELECT parts.budget, parts.geom AS g FROM parts WHERE parts.f + parts.r >= 1
        UNION ALL
        SELECT parts.budget, ST_LineSubstring(parts.geom, 0, parts.f) FROM parts WHERE parts.f + parts.r < 1 AND parts.f > 0
        UNION ALL
        SELECT parts.budget, ST_LineSubstring(parts.geom, 1 - parts.r, 1) FROM parts WHERE parts.f + parts.r < 1 AND parts.r > 0
    ), hulls AS (
        -- Streets are densified first: a hull of crossings alone cuts notches between parallel streets.
        -- The hull is then simplified within a quarter of that spacing (about half the vertices, same area).
        SELECT pieces.budget,
               ST_SimplifyPreserveTopology(ST_ConcaveHull(ST_Collect(ST_Segmentize(pieces.g, seg_deg)), 0.5), seg_deg / 4) AS h
          FROM pieces GROUP BY pieces.budget
    )
    -- A hull of one street is a line: widen it to a thin polygon so the answer is always an area.
    SELECT b.b, ST_AsGeoJSON(CASE WHEN ST_Dimension(hulls.h) = 2 THEN hulls.h
                                  ELSE ST_Buffer(coalesce(hulls.h, v.geom)::geography, 10)::geometry END, 7)
      FROM unnest(budgets) WITH ORDINALITY b(b, ord)
      LEFT JOIN hulls ON hulls.budget = b.b
      CROSS JOIN (SELECT geom FROM carto_lds.road_vertices WHERE id = start) v
     ORDER BY b.ord;
END $$;
