import Foundation
import HTTPKit
import SQLKit

/// H3 sources over a column of H3 cell ids (hex text or bigint) on the Swift side: parsing the `{i}` of
/// deck.gl's H3 tiles (which are H3 cells) and the tile SQL. The warehouse side is the tessera_h3 extension.
enum H3Cells {
    /// The cell and its resolution of an H3 cell index given in hexadecimal, or nil if it is no valid cell.
    static func cell(hex: String) -> (cell: UInt64, resolution: Int)? {
        guard !hex.isEmpty, hex.count <= 16, let cell = UInt64(hex, radix: 16) else { return nil }
        // Reserved bit 0, mode 1 (cell), reserved bits 0, base cell < 122, unused digits 7.
        guard cell >> 63 == 0, (cell >> 59) & 0xF == 1, (cell >> 56) & 7 == 0, (cell >> 45) & 0x7F < 122 else { return nil }
        let resolution = Int((cell >> 52) & 0xF)
        for r in 1...15 {
            let digit = (cell >> UInt64((15 - r) * 3)) & 7
            if r > resolution ? digit != 7 : digit == 7 { return nil }
        }
        return (cell, resolution)
    }

    /// The cell column as bigint: hex text through carto.h3_string_toint.
    static func column(_ record: SourceRecord) throws -> SQL {
        let c = try Identifier(record.definition.spatialColumn)
        return record.schema.kind(of: record.definition.spatialColumn) == .number
            ? "_src.\(c)::bigint" : "carto.h3_string_toint(_src.\(c)::text)"
    }

    /// The statement for one H3 tile (the slot `tile`, a cell at the slot `z`): the data cells under it
    /// grouped by their parent at the slot `resolution` with `aggregationExp`, as `[{id, properties}]` and the
    /// cell count. Rows are found by scanning (no index on cell columns yet).
    static func tileSQL(_ record: SourceRecord) throws -> SQL {
        """
        SELECT coalesce(json_agg(json_build_object('id', carto.h3_int_tostring(t.__cell), 'properties', to_jsonb(t) - '__cell')), '[]')::text, count(*)
        FROM (
        \(try cellsSQL(record, inTile: true))
        ) t
        """
    }

    /// A cell column's rows grouped by their parent at the slot `resolution`: `__cell` and the
    /// `aggregationExp` columns (also the TileJSON attributes' cells); `inTile`: only the descendants of
    /// the slot `tile` (at the slot `z`), filtered before grouping. Cells coarser than the resolution have no
    /// parent there and are left out.
    static func cellsSQL(_ record: SourceRecord, inTile: Bool = false) throws -> SQL {
        let d = record.definition
        let column = try column(record)
        let resolution: SQL = "\(SQL.slot("resolution"))::int"
        var sql: SQL = """
            SELECT carto.h3_toparent(__c, \(resolution)) AS __cell, \(unsafeRaw: d.aggregationExp ?? "count(*) AS count")
            FROM \(try SourceSQL.from(d)) AS _src CROSS JOIN LATERAL (SELECT \(column) AS __c) __k
            WHERE carto.h3_resolution(__c) >= \(resolution)
            """
        // Inside CASE: PostgreSQL may evaluate AND-ed conditions in any order, and the parent of a cell
        // coarser than the tile is an error, not false.
        if inTile {
            sql += " AND CASE WHEN carto.h3_resolution(__c) >= \(resolution) THEN carto.h3_toparent(__c, \(SQL.slot("z"))::int) = \(SQL.slot("tile"))::bigint END"
        }
        if let filter = try FilterSQL.condition(d.filters, or: d.filtersOr, schema: record.schema) { sql += " AND \(filter)" }
        return sql + " GROUP BY 1"
    }
}
