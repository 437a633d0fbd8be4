import CryptoSupport
import Foundation
import HTTPKit
import Platform
import Postgres
import SQLKit

/// What the handshake learns about a source from the warehouse: its schema, geometry, size and data version.
struct SourceInspector {
    let connection: PGConnection
    let watch: PGConnection.Watch

    func inspect(_ d: SourceDefinition, id: String) throws -> SourceRecord {
        let from = try SourceSQL.from(d)
        var schema = try SourceSchema.describe(from: from, connection: connection, watch: watch)
        guard let kind = schema.kind(of: d.spatialColumn) else { throw FilterSQL.columnNotFound(d.spatialColumn) }
        var geometryType: String?
        var dataResolution: Int?
        var extent: [Double]?
        if let index = d.spatialType.index, kind == .geometry {
            // Dynamic aggregation: points grouped into cells per tile.
            // Checked once per source here, so tiles and widgets need not check again.
            try index.requireFunctions(connection, watch: watch)
            let g = try Identifier(d.spatialColumn)
            let r = try connection.execute("""
                SELECT ST_SRID(_src.\(g)::geometry), GeometryType(_src.\(g)::geometry) FROM \(from) AS _src
                WHERE _src.\(g) IS NOT NULL LIMIT 1
                """ as SQL, watch: watch)
            schema.srid = r.rowCount == 1 ? (r.int(0, 0).map { $0 == 0 ? 4326 : $0 } ?? 4326) : 4326
            geometryType = r.rowCount == 1 ? r.string(0, 1) : nil
            guard geometryType == nil || geometryType == "POINT" else {
                throw APIError.badRequest("spatialDataColumn \(d.spatialColumn) holds \(geometryType!) geometries; \(index.rawValue) aggregation needs points",
                                          code: "invalid_parameter")
            }
            dataResolution = d.spatialIndexReferenceResolution ?? index.maxResolution
        } else if d.spatialType == .h3 {
            dataResolution = try h3Resolution(d, from: from, kind: kind)
        } else if d.spatialType == .quadbin {
            guard kind == .number else {
                throw APIError.badRequest("spatialDataColumn \(d.spatialColumn) must hold quadbin cell ids (bigint) or point geometries", code: "invalid_parameter")
            }
            try Quadbin.requireFunctions(connection, watch: watch)
            let q = try Identifier(d.spatialColumn)
            let r = try connection.execute("""
                SELECT carto.quadbin_resolution(_src.\(q)::bigint) FROM \(from) AS _src WHERE _src.\(q) IS NOT NULL LIMIT 1
                """ as SQL, watch: watch)
            dataResolution = r.int(0, 0) ?? 0
        } else {
            guard kind == .geometry else {
                throw APIError.badRequest("spatialDataColumn \(d.spatialColumn) is not a geometry column", code: "invalid_parameter")
            }
            let g = try Identifier(d.spatialColumn)
            // geography columns work through ::geometry (always SRID 4326).
            let r = try connection.execute("""
                SELECT ST_SRID(_src.\(g)::geometry), GeometryType(_src.\(g)::geometry) FROM \(from) AS _src
                WHERE _src.\(g) IS NOT NULL LIMIT 1
                """ as SQL, watch: watch)
            schema.srid = r.rowCount == 1 ? (r.int(0, 0).map { $0 == 0 ? 4326 : $0 } ?? 4326) : 4326
            geometryType = r.rowCount == 1 ? r.string(0, 1) : nil
            extent = try mercatorExtent(d, from: from, column: g, srid: schema.srid)
        }
        for (parameter, column) in [("trajectoryIdColumn", d.trajectoryIdColumn), ("timestampColumn", d.timestampColumn)] {
            guard let column else { continue }
            guard schema.kind(of: column) != nil else {
                throw APIError.badRequest("\(parameter): column \(column) not found", code: "column_not_found")
            }
        }
        _ = try schema.properties(requested: d.tileColumns, spatialColumn: d.spatialColumn)
        _ = try FilterSQL.condition(d.filters, or: d.filtersOr, schema: schema)
        return SourceRecord(id: id, definition: d, schema: schema, geometryType: geometryType, dataResolution: dataResolution,
                            extent: extent)
    }

    /// The resolution of an H3 cell column (from its first cell, as for quadbin columns); a column that
    /// holds no H3 cell ids is a 400 naming it.
    func h3Resolution(_ d: SourceDefinition, from: SQL, kind: ColumnKind) throws -> Int {
        guard kind == .number || kind == .string else {
            throw APIError.badRequest("spatialDataColumn \(d.spatialColumn) must hold H3 cell ids (hex text or bigint) or point geometries",
                                      code: "invalid_parameter")
        }
        try WarehouseH3.require(connection, watch: watch)
        let c = try Identifier(d.spatialColumn)
        let cell: SQL = kind == .number ? "_src.\(c)::bigint" : "_src.\(c)::text"
        let r = try connection.execute("""
            SELECT carto.h3_isvalid(\(cell)), CASE WHEN carto.h3_isvalid(\(cell)) THEN carto.h3_resolution(\(cell)) END
            FROM \(from) AS _src WHERE _src.\(c) IS NOT NULL LIMIT 1
            """ as SQL, watch: watch)
        guard r.rowCount == 0 || r.bool(0, 0) == true else {
            throw APIError.badRequest("spatialDataColumn \(d.spatialColumn) holds a value that is not an H3 cell id", code: "invalid_parameter")
        }
        return r.int(0, 1) ?? 0
    }

    /// The data's bounding box in Web Mercator: tiles outside it are empty without a query, and tile boxes
    /// are clipped to it before they are transformed into the source's SRID (a tile far from a UTM zone
    /// cannot be transformed into it). Tables use the planner's estimate; queries (or tables without
    /// statistics, or names PostGIS cannot parse) are measured.
    func mercatorExtent(_ d: SourceDefinition, from: SQL, column g: Identifier, srid: Int) throws -> [Double]? {
        var box: String?
        if d.kind == .table {
            let name = try SourceSQL.table(d)
            // PostGIS refuses names it cannot parse back (spaces, dots, quotes) and, in some versions, tables
            // without statistics: an attempt, so the measured fallback still runs in the same transaction.
            box = try connection.attempt {
                try connection.execute("SELECT ST_EstimatedExtent(\(name.schemaOrPublic), \(name.table), \(d.spatialColumn))::text" as SQL,
                                       watch: watch).string(0, 0)
            } ?? nil
        }
        if box == nil {
            box = try connection.execute("SELECT ST_Extent(_src.\(g)::geometry)::text FROM \(from) AS _src" as SQL, watch: watch).string(0, 0)
        }
        guard let native = TileJSONBuilder.parseBox(box, clamp: false) else { return nil }
        // Latitudes beyond Web Mercator's range cannot be transformed; clamp geographic boxes first.
        // Longitudes too: ST_EstimatedExtent rounds outwards (180.0000153 for world data), and a
        // longitude past 180 wraps to -180 in the transform, which collapsed the box to the antimeridian.
        let geographic = srid == 4326
        let r = try connection.execute("""
            SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)
            FROM (SELECT ST_Transform(ST_MakeEnvelope($1, $2, $3, $4, $5::int), 3857)::box2d AS b) t
            """, [String(geographic ? max(native[0], -180) : native[0]), String(geographic ? max(native[1], -85.0511) : native[1]),
                  String(geographic ? min(native[2], 180) : native[2]),
                  String(geographic ? min(native[3], 85.0511) : native[3]), String(srid)], watch: watch)
        guard let xmin = r.double(0, 0), let ymin = r.double(0, 1), let xmax = r.double(0, 2), let ymax = r.double(0, 3) else { return nil }
        return [xmin, ymin, xmax, ymax]
    }

    /// Row count: the catalogue estimate for tables (exact when small), the planner's for queries.
    func rowCount(_ d: SourceDefinition, plan: QueryPlan) throws -> Int {
        if d.kind == .table {
            let name = try SourceSQL.table(d).identifier
            let r = try connection.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(\(name.text))" as SQL, watch: watch)
            if let n = r.int(0, 0), n >= 10_000 { return n }
            return try connection.execute("SELECT count(*) FROM \(name)" as SQL, watch: watch).int(0, 0) ?? 0
        }
        return plan.estimatedRows
    }

    /// The rows the source's filters let through, counted up to `limit`: a filtered source's size (what decides
    /// whether its tiles are thinned) is not its table's.
    func filteredRowCount(_ record: SourceRecord, limit: Int) throws -> Int? {
        let d = record.definition
        guard let condition = try FilterSQL.condition(d.filters, or: d.filtersOr, schema: record.schema) else { return nil }
        let sql: SQL = "SELECT count(*) FROM (SELECT 1 FROM \(try SourceSQL.from(d)) AS _src WHERE \(condition) LIMIT \(literal: limit)) t"
        return try connection.execute(sql, watch: watch).int(0, 0)
    }

    /// A positive integer that changes when the data behind the source changes: PostgreSQL's per-table
    /// write counters and file node (which a TRUNCATE or table swap replaces) of every table it reads.
    func dataVersion(plan: QueryPlan) throws -> Int {
        let names = plan.relations.map { "\($0.schema).\($0.table)" }
        let r = try connection.execute("""
            SELECT string_agg(coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0) || ':' || c.relfilenode, ',' ORDER BY c.oid)
            FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE (n.nspname || '.' || c.relname) = ANY($1::text[])
            """, [arrayLiteral(names)], watch: watch)
        let digest = Crypto.sha256(Array((r.string(0, 0) ?? "").utf8))
        return digest.prefix(6).reduce(0) { $0 << 8 | Int($1) } % 1_000_000_000_000 + 1
    }

    func plan(_ d: SourceDefinition) throws -> QueryPlan {
        let from = try SourceSQL.from(d)
        let sql: SQL = "SELECT * FROM \(from) AS _src"
        return try QueryPlan.explain(sql.text, sql.parameters, connection: connection, watch: watch)
    }
}
