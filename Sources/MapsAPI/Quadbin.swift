import Foundation
import HTTPKit
import Postgres
import SQLKit

/// Quadbin cells (CARTO's 64-bit spatial index on Web Mercator tiles) on the Swift side: parsing the
/// `{i}` of tile URLs. The warehouse side is `warehouse/001_quadbin.sql`.
enum Quadbin {
    /// The tile of a cell given as 16 hex digits (as deck.gl fills `{i}`), or nil if it is no valid cell.
    static func tile(hex: String) -> (z: Int, x: Int, y: Int)? {
        guard hex.count <= 16, let cell = UInt64(hex, radix: 16) else { return nil }
        let z = Int((cell >> 52) & 31)
        let header: UInt64 = 0x4000_0000_0000_0000, mode: UInt64 = 0x0800_0000_0000_0000
        let footer: UInt64 = 0x000F_FFFF_FFFF_FFFF
        guard cell & header == header, (cell >> 59) & 7 == 1, z <= 26, cell & (footer >> UInt64(2 * z)) == footer >> UInt64(2 * z),
              cell & mode == mode else { return nil }
        let morton = (cell & footer) << 12
        func compact(_ value: UInt64) -> UInt64 {
            var v = value & 0x5555_5555_5555_5555
            v = (v | (v >> 1)) & 0x3333_3333_3333_3333
            v = (v | (v >> 2)) & 0x0F0F_0F0F_0F0F_0F0F
            v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF
            v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF
            return (v | (v >> 16)) & 0x0000_0000_FFFF_FFFF
        }
        return (z, Int(compact(morton) >> UInt64(32 - z)), Int(compact(morton >> 1) >> UInt64(32 - z)))
    }

    static func requireFunctions(_ db: PGConnection, watch: PGConnection.Watch) throws {
        let r = try db.execute("SELECT to_regprocedure('carto.quadbin_toparent(bigint,integer)') IS NOT NULL", watch: watch)
        guard r.bool(0, 0) == true else {
            throw APIError.badRequest("Quadbin functions are not installed in this warehouse", code: "quadbin_unavailable",
                                      hint: "Run `tessera warehouse-migrate --email <admin> --connection <name>`")
        }
    }

    /// The statement for one quadbin tile: cells at `z + aggregationResLevel` (at most the data's
    /// resolution) aggregated with `aggregationExp`, as a JSON array of `{id, properties}` in cell order (the
    /// grouping's own order changes with the plan, and the same tile must give the same bytes). z, x, y, the
    /// resolution and the data's resolution are slots (`parameters(z:…)`), so the text is prepared once.
    static func tileSQL(_ record: SourceRecord) throws -> SQL {
        let d = record.definition
        let from = try SourceSQL.from(d)
        let column: SQL = "_src.\(try Identifier(d.spatialColumn))::bigint"
        var conditions: [SQL] = ["\(column) BETWEEN r.lo AND r.hi"]
        if let filter = try FilterSQL.condition(d.filters, or: d.filtersOr, schema: record.schema) {
            conditions.append(filter)
        }
        // aggregationExp is client SQL: users may send any; SourceAccess only lets scoped tokens send simple aggregates.
        let aggregation = SQL(unsafeRaw: d.aggregationExp ?? "count(*) AS count")
        return """
            SELECT coalesce(json_agg(json_build_object('id', lpad(to_hex(t.__cell), 16, '0'), 'properties', to_jsonb(t) - '__cell') ORDER BY t.__cell), '[]')::text
            FROM (
              SELECT carto.quadbin_toparent(\(column), \(SQL.slot("resolution"))::int) AS __cell, \(aggregation)
              FROM \(from) AS _src, carto.__quadbin_children_range(carto.quadbin_fromzxy(\(SQL.slot("z"))::int, \(SQL.slot("x"))::bigint, \(SQL.slot("y"))::bigint), \(SQL.slot("dataResolution"))::int) AS r
              WHERE \(conditions, joinedBy: " AND ")
              GROUP BY 1
            ) t
            """
    }

    /// A cell column's rows grouped by their parent at the slot `resolution` (the whole source, for its
    /// TileJSON attributes): `__cell` and the `aggregationExp` columns.
    static func cellsSQL(_ record: SourceRecord) throws -> SQL {
        let d = record.definition
        let column: SQL = "_src.\(try Identifier(d.spatialColumn))::bigint"
        var sql: SQL = "SELECT carto.quadbin_toparent(\(column), \(SQL.slot("resolution"))::int) AS __cell, \(unsafeRaw: d.aggregationExp ?? "count(*) AS count") FROM \(try SourceSQL.from(d)) AS _src WHERE \(column) IS NOT NULL"
        if let filter = try FilterSQL.condition(d.filters, or: d.filtersOr, schema: record.schema) { sql += " AND \(filter)" }
        return sql + " GROUP BY 1"
    }

    /// The bound values of `tileSQL` for one tile.
    static func parameters(_ sql: SQL, z: Int, x: Int, y: Int, resolution: Int, dataResolution: Int) -> [String?] {
        sql.parameters(filling: ["z": String(z), "x": String(x), "y": String(y), "resolution": String(resolution),
                                 "dataResolution": String(dataResolution)])!
    }
}
