import HTTPKit
import Platform
import Postgres
import SQLKit

/// Catalog queries of the data explorer, run on one warehouse connection. Values are bound; the few
/// identifiers (the table, its geometry column, PostGIS's schema) are quoted by `Identifier` (SQLKit)
/// in `ident` below (`fqn` in the answers is display text built by the server's quote_ident). Listed are the
/// relations the connection's role may read, outside PostgreSQL's catalogs, extension-owned objects
/// (PostGIS's spatial_ref_sys, …) and Tessera's internals.
struct WarehouseCatalog {
    let db: PGConnection

    /// Schemas that are never user data: Tessera's own (`carto`) and PostGIS's optional ones.
    static let hiddenSchemas = "{information_schema,carto,topology,tiger,tiger_data}"
    /// Above this estimate the detail shows the estimate instead of counting (a count scans the table).
    static let exactCountLimit = 1_000_000

    /// Relation filter shared by every query (`c` = pg_class, `n` = pg_namespace).
    static let visibleRelation = """
        c.relkind IN ('r', 'v', 'm', 'p', 'f') AND NOT c.relispartition AND c.relname NOT LIKE 'tessera\\_%'
        AND has_table_privilege(c.oid, 'SELECT')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
        """
    static let visibleSchema = """
        n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> ALL ($1::text[]) AND has_schema_privilege(n.oid, 'USAGE')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
        """
    /// reltuples is -1 until the first ANALYZE; the statistics collector's live-tuple count covers that gap.
    static let estimate = "CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint ELSE s.n_live_tup END"

    func ident(_ name: String) throws -> String { try Identifier.quote(name) }

    func schemas() throws -> [JSON] {
        let r = try db.execute("""
            SELECT n.nspname, count(c.oid) FROM pg_namespace n
            LEFT JOIN pg_class c ON c.relnamespace = n.oid AND \(Self.visibleRelation)
            WHERE \(Self.visibleSchema) GROUP BY n.nspname ORDER BY n.nspname
            """, [Self.hiddenSchemas])
        return (0..<r.rowCount).map { ["name": .optional(r.string($0, 0)), "tables": .int(r.int($0, 1) ?? 0)] }
    }

    /// The schema PostGIS lives in, or nil without PostGIS (then nothing has a geometry column).
    func postgisSchema() throws -> String? {
        try db.execute("""
            SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis'
            """).string(0, 0)
    }

    /// One geometry column per table (`geom`, then `the_geom`, then the first by name), from PostGIS's view.
    func geometryJoin(schemaParam: String, tableFilter: String) throws -> String {
        guard let postgis = try postgisSchema() else {
            return "LEFT JOIN (SELECT NULL::name AS t, NULL::name AS col, NULL::text AS type, NULL::int AS srid) g ON false"
        }
        return """
            LEFT JOIN (SELECT DISTINCT ON (f_table_name) f_table_name AS t, f_geometry_column AS col, type, srid
                       FROM \(try ident(postgis)).geometry_columns WHERE f_table_schema = \(schemaParam) \(tableFilter)
                       ORDER BY f_table_name, f_geometry_column <> 'geom', f_geometry_column <> 'the_geom', f_geometry_column) g
              ON g.t = c.relname
            """
    }

    /// The tables of a schema; nil when the schema is not visible.
    func tables(schema: String) throws -> [JSON]? {
        let exists = try db.execute("SELECT 1 FROM pg_namespace n WHERE \(Self.visibleSchema) AND n.nspname = $2",
                                    [Self.hiddenSchemas, schema])
        guard exists.rowCount == 1 else { return nil }
        let r = try db.execute("""
            SELECT c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname), \(Self.estimate), g.col, g.type, g.srid,
                   pg_total_relation_size(c.oid)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
            \(try geometryJoin(schemaParam: "$1", tableFilter: ""))
            WHERE n.nspname = $1 AND \(Self.visibleRelation)
            ORDER BY c.relname
            """, [schema])
        return (0..<r.rowCount).map { i in
            ["name": .optional(r.string(i, 0)), "fqn": .optional(r.string(i, 1)), "rows": r.int(i, 2).map(JSON.int) ?? .null,
             "geometryColumn": .optional(r.string(i, 3)), "geometryType": .optional(r.string(i, 4)),
             "srid": r.int(i, 5).map(JSON.int) ?? .null, "bytes": r.int(i, 6).map(JSON.int) ?? .null]
        }
    }

    /// Everything the explorer shows about one table; nil when it is not visible.
    func table(schema: String, name: String) throws -> JSON? {
        let r = try db.execute("""
            SELECT c.oid, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname), \(Self.estimate), g.col, g.type, g.srid,
                   pg_total_relation_size(c.oid), pg_relation_size(c.oid)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
            \(try geometryJoin(schemaParam: "$1", tableFilter: "AND f_table_name = $2"))
            WHERE n.nspname = $1 AND c.relname = $2 AND \(Self.visibleRelation)
              AND \(Self.visibleSchema.replacingOccurrences(of: "$1", with: "$3"))
            """, [schema, name, Self.hiddenSchemas])
        guard r.rowCount == 1, let oid = r.string(0, 0) else { return nil }
        let relation = try ident(schema) + "." + ident(name)
        let estimate = r.int(0, 3)
        var rows = estimate
        let exact = estimate.map { $0 < Self.exactCountLimit } ?? true
        if exact { rows = try db.execute("SELECT count(*) FROM \(relation)").int(0, 0) }

        let geoOids = try db.geometryOids()
        let cols = try db.execute("""
            SELECT attname, format_type(atttypid, atttypmod), atttypid FROM pg_attribute
            WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum
            """, [oid])
        let columns: [JSON] = (0..<cols.rowCount).map { i in
            let kind = ColumnKind.of(oid: UInt32(cols.string(i, 2) ?? "") ?? 0, geometryOids: geoOids)
            return ["name": .optional(cols.string(i, 0)), "type": .optional(cols.string(i, 1)), "kind": .string(kind.schemaType)]
        }

        var geometryType = r.string(0, 5), srid = r.int(0, 6)
        var bounds: JSON = .null
        if let column = r.string(0, 4) {
            let geom = try ident(column)
            // Unconstrained columns (GEOMETRY, SRID 0) say nothing: look at one value instead.
            if geometryType == "GEOMETRY" || srid == 0 {
                let sample = try db.execute("SELECT GeometryType(\(geom)), ST_SRID(\(geom)) FROM \(relation) WHERE \(geom) IS NOT NULL LIMIT 1")
                if sample.rowCount == 1 { geometryType = sample.string(0, 0); srid = sample.int(0, 1) }
            }
            bounds = try self.bounds(relation: relation, column: geom, schema: schema, table: name, rawColumn: column,
                                     srid: srid ?? 0, estimated: !exact)
        }
        return ["name": .optional(r.string(0, 1)), "fqn": .optional(r.string(0, 2)), "rows": rows.map(JSON.int) ?? .null,
                "rowsExact": .bool(exact), "columns": .array(columns), "geometryColumn": .optional(r.string(0, 4)),
                "geometryType": .optional(geometryType), "srid": srid.map(JSON.int) ?? .null, "bounds": bounds,
                "bytes": r.int(0, 7).map(JSON.int) ?? .null, "dataBytes": r.int(0, 8).map(JSON.int) ?? .null]
    }

    /// A visible table's columns in order with their kinds (`ColumnKind.schemaType`); nil when the table is
    /// not visible (or has no columns, which leaves nothing to page through).
    func columns(schema: String, name: String) throws -> [(name: String, kind: String)]? {
        let geoOids = try db.geometryOids()
        let r = try db.execute("""
            SELECT a.attname, a.atttypid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname = $1 AND c.relname = $2 AND \(Self.visibleRelation)
              AND \(Self.visibleSchema.replacingOccurrences(of: "$1", with: "$3"))
            ORDER BY a.attnum
            """, [schema, name, Self.hiddenSchemas])
        guard r.rowCount > 0 else { return nil }
        return (0..<r.rowCount).map { i in
            (r.string(i, 0) ?? "", ColumnKind.of(oid: UInt32(r.string(i, 1) ?? "") ?? 0, geometryOids: geoOids).schemaType)
        }
    }

    /// [west, south, east, north] in WGS84; big tables use PostGIS's estimate (from ANALYZE statistics).
    func bounds(relation: String, column: String, schema: String, table: String, rawColumn: String, srid: Int,
                estimated: Bool) throws -> JSON {
        let extent = estimated ? "ST_EstimatedExtent($1, $2, $3)" : "ST_Extent(\(column))"
        let wgs84 = srid == 0 || srid == 4326 ? "e::geometry" : "ST_Transform(ST_SetSRID(e::geometry, \(srid)), 4326)"
        let from = estimated ? "" : " FROM \(relation)"
        let r = try db.execute("""
            SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)
            FROM (SELECT \(wgs84) AS b FROM (SELECT \(extent) AS e\(from)) x WHERE e IS NOT NULL) y
            """, estimated ? [schema, table, rawColumn] : [])
        guard r.rowCount == 1 else { return .null }
        return .array((0..<4).map { r.double(0, $0).map(JSON.number) ?? .null })
    }
}
