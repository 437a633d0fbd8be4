-- tessera_h3 1.0: H3 cells for Tessera's warehouse, in schema carto (CARTO Analytics Toolbox names).
-- Cells are hex strings as CARTO stores them (h3_*) with bigint twins (h3_*_int or bigint overloads)
-- for aggregation, where grouping on bigint is cheaper. Wrappers use SQL-standard bodies (RETURN ...)
-- so they bind PostGIS and the C functions at creation, whatever the caller's search_path, and are
-- inlined into the caller's query.
\echo Use "CREATE EXTENSION tessera_h3" to load this file. \quit

-- C core (bigint cells)
CREATE FUNCTION h3_fromlonglat_int(lon float8, lat float8, resolution int) RETURNS bigint
    AS 'MODULE_PATHNAME', 'tessera_h3_lonlat_to_cell' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION h3_string_toint(cell text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'tessera_h3_string_to_int' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION h3_int_tostring(cell bigint) RETURNS text
    AS 'MODULE_PATHNAME', 'tessera_h3_int_to_string' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION h3_isvalid(cell text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'tessera_h3_is_valid_string' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION h3_isvalid(cell bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'tessera_h3_is_valid' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION h3_resolution(cell bigint) RETURNS int
    AS 'MODULE_PATHNAME', 'tessera_h3_resolution' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION h3_toparent(cell bigint, resolution int) RETURNS bigint
    AS 'MODULE_PATHNAME', 'tessera_h3_to_parent' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION h3_tochildren(cell bigint, resolution int, max_cells bigint DEFAULT 1000000) RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'tessera_h3_to_children' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION _h3_boundary_ewkb(cell bigint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tessera_h3_boundary_ewkb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION _h3_center_ewkb(cell bigint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tessera_h3_center_ewkb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION _h3_polyfill_wkb(wkb bytea, resolution int, max_cells bigint) RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'tessera_h3_polyfill_wkb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Geometry forms over bigint cells. Inputs in another SRID are transformed to 4326 first.
CREATE FUNCTION _h3_point_to_cell(geom geometry, resolution int) RETURNS bigint
    AS 'MODULE_PATHNAME', 'tessera_h3_point_to_cell' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- The C fast path answers plain 4326 points; NULL hands anything else to PostGIS (transform, errors).
CREATE FUNCTION h3_fromgeogpoint_int(geom geometry, resolution int) RETURNS bigint
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE
    RETURN coalesce(_h3_point_to_cell(geom, resolution),
        h3_fromlonglat_int(ST_X(CASE WHEN ST_SRID(geom) IN (0, 4326) THEN geom ELSE ST_Transform(geom, 4326) END),
                           ST_Y(CASE WHEN ST_SRID(geom) IN (0, 4326) THEN geom ELSE ST_Transform(geom, 4326) END),
                           resolution));
CREATE FUNCTION h3_boundary(cell bigint) RETURNS geometry
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE RETURN geometry(_h3_boundary_ewkb(cell));
CREATE FUNCTION h3_center(cell bigint) RETURNS geometry
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE RETURN geometry(_h3_center_ewkb(cell));
CREATE FUNCTION h3_polyfill_int(geom geometry, resolution int, max_cells bigint DEFAULT 1000000) RETURNS bigint[]
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE
    RETURN _h3_polyfill_wkb(ST_AsBinary(ST_Force2D(
               CASE WHEN ST_SRID(geom) IN (0, 4326) THEN geom ELSE ST_Transform(geom, 4326) END)),
           resolution, max_cells);

-- Hex-string forms (CARTO's H3 columns, deck.gl's H3 tile layer).
CREATE FUNCTION h3_fromlonglat(lon float8, lat float8, resolution int) RETURNS text
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE RETURN h3_int_tostring(h3_fromlonglat_int(lon, lat, resolution));
CREATE FUNCTION h3_fromgeogpoint(geom geometry, resolution int) RETURNS text
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE RETURN h3_int_tostring(h3_fromgeogpoint_int(geom, resolution));
CREATE FUNCTION h3_resolution(cell text) RETURNS int
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE RETURN h3_resolution(h3_string_toint(cell));
CREATE FUNCTION h3_boundary(cell text) RETURNS geometry
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE RETURN h3_boundary(h3_string_toint(cell));
CREATE FUNCTION h3_center(cell text) RETURNS geometry
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE RETURN h3_center(h3_string_toint(cell));
CREATE FUNCTION h3_toparent(cell text, resolution int) RETURNS text
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE RETURN h3_int_tostring(h3_toparent(h3_string_toint(cell), resolution));
CREATE FUNCTION h3_tochildren(cell text, resolution int, max_cells bigint DEFAULT 1000000) RETURNS text[]
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE
    RETURN ARRAY(SELECT h3_int_tostring(c) FROM unnest(h3_tochildren(h3_string_toint(cell), resolution, max_cells)) c);
CREATE FUNCTION h3_polyfill(geom geometry, resolution int, max_cells bigint DEFAULT 1000000) RETURNS text[]
    LANGUAGE SQL IMMUTABLE PARALLEL SAFE
    RETURN ARRAY(SELECT h3_int_tostring(c) FROM unnest(h3_polyfill_int(geom, resolution, max_cells)) c);
