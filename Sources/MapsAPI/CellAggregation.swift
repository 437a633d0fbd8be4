import Foundation
import HTTPKit
import Platform
import Postgres
import SQLKit

/// A spatial index whose cells points are aggregated into: what the aggregation builder needs of it is
/// the cell of a WGS84 point at a resolution (as grouping keys), whether a cell lies in the requested tile,
/// and the cell's id as the tile JSON carries it. Quadbin and H3 differ only here.
enum CellIndex: String, Sendable {
    case quadbin, h3

    /// The finest resolution the index has.
    var maxResolution: Int { self == .quadbin ? 26 : 15 }

    /// The grouping keys of the cell holding the point `lon`/`lat` at the slot `resolution`. Quadbin keys are
    /// the cell's tile x/y computed inline (the same float arithmetic as `carto.quadbin_fromlonglat`, so
    /// cells are identical) so that a million points cost no function call each; the id is built per cell.
    func keys(lon: SQL, lat: SQL) -> [(name: String, sql: SQL)] {
        let resolution = SQL.slot("resolution")
        switch self {
        case .quadbin:
            let n: SQL = "(1::bigint << \(resolution)::int)::float8"
            let y: SQL = "greatest(-85.05112877980659, least(85.05112877980659, \(lat)))"
            return [("__x", "greatest(0, least(\(n) - 1, floor(\(n) * (\(lon) / 360.0 + 0.5))))::bigint"),
                    ("__y", "greatest(0, least(\(n) - 1, floor(\(n) * (0.5 - ln((1 + sin(radians(\(y)))) / (1 - sin(radians(\(y))))) / (4 * pi())))))::bigint")]
        case .h3:
            // Grouped on the bigint form; formatted to hex only per cell (cellId), which the H3 bench found fastest.
            return [("__cell", "carto.h3_fromlonglat_int(\(lon), \(lat), \(resolution)::int)")]
        }
    }

    /// True when the cell (given by its keys, as columns of `t`) lies in the requested tile.
    var insideTile: SQL {
        switch self {
        case .quadbin: return "(t.__x >> \(SQL.slot("shift"))::int) = \(SQL.slot("x"))::bigint AND (t.__y >> \(SQL.slot("shift"))::int) = \(SQL.slot("y"))::bigint"
        // deck.gl's H3 tiles are H3 cells: a data cell belongs to the tile whose descendant it is.
        case .h3: return "carto.h3_toparent(t.__cell, \(SQL.slot("z"))::int) = \(SQL.slot("tile"))::bigint"
        }
    }

    /// The tile's area in WGS84, to find candidate rows through the geometry column's index.
    var tileRegion: SQL {
        switch self {
        case .quadbin: return "ST_Transform(ST_TileEnvelope(\(SQL.slot("z"))::int, \(SQL.slot("x"))::int, \(SQL.slot("y"))::int), 4326)"
        // Child cells overhang their parent's boundary, so the candidates come from its box grown by half
        // its size each way (a superset: insideTile decides), clipped so that it transforms to any SRID.
        case .h3:
            return """
                (SELECT ST_ClipByBox2D(ST_Expand(__b, (ST_XMax(__b) - ST_XMin(__b)) / 2, (ST_YMax(__b) - ST_YMin(__b)) / 2), \
                ST_MakeEnvelope(-180, -89.999, 180, 89.999, 4326)) FROM (SELECT ST_Envelope(carto.h3_boundary(\(SQL.slot("tile"))::bigint)) AS __b) __t)
                """
        }
    }

    /// The id deck.gl reads: 16 hex digits for quadbin (as `{i}`), the H3 index text for H3.
    var cellId: SQL {
        switch self {
        case .quadbin: return "lpad(to_hex(carto.quadbin_fromzxy(\(SQL.slot("resolution"))::int, t.__x, t.__y)), 16, '0')"
        case .h3: return "carto.h3_int_tostring(t.__cell)"
        }
    }

    /// 400 naming what to install when the warehouse lacks the index's SQL functions.
    func requireFunctions(_ db: PGConnection, watch: PGConnection.Watch) throws {
        switch self {
        case .quadbin:
            try Quadbin.requireFunctions(db, watch: watch)
        case .h3:
            try WarehouseH3.require(db, watch: watch)
        }
    }
}

/// Dynamic aggregation: the points of a geometry column grouped into the cells of one tile, each cell's
/// properties computed by the source's `aggregationExp`, answered as deck.gl's spatial-index tile JSON
/// (`[{id, properties}]`). Pure; z, x, y (or the tile's cell), the resolution and the shift are slots.
enum CellAggregation {
    /// Its second column, the number of cells, is what bench/tiles reads (as the feature count of vector tiles).
    static func tileSQL(_ record: SourceRecord, index: CellIndex) throws -> SQL {
        let keys = index.keys(lon: "__p.lon", lat: "__p.lat")
        var strip: SQL = "to_jsonb(t)"
        for key in keys { strip += " - '\(unsafeRaw: key.name)'" }
        return """
            SELECT coalesce(json_agg(json_build_object('id', \(index.cellId), 'properties', \(strip))), '[]')::text, count(*)
            FROM (
            \(try cellsSQL(record, index: index, inTile: true))
            ) t
            WHERE \(index.insideTile)
            """
    }

    /// The points grouped by cell at the slot `resolution` (`inTile`: only those in the tile's area), one row
    /// per cell: its keys and the `aggregationExp` columns.
    static func cellsSQL(_ record: SourceRecord, index: CellIndex, inTile: Bool) throws -> SQL {
        let d = record.definition
        let from = try SourceSQL.from(d)
        let g: SQL = "_src.\(try Identifier(d.spatialColumn))::geometry"
        let srid = record.schema.srid
        var conditions: [SQL] = []
        if inTile {
            // Candidates through the column's GiST index, in the column's own SRID.
            conditions.append("\(g) && \(srid == 4326 ? index.tileRegion : "ST_Transform(\(index.tileRegion), \(literal: srid))")")
        }
        if let filter = try FilterSQL.condition(d.filters, or: d.filtersOr, schema: record.schema) {
            conditions.append(filter)
        }
        let point: SQL = srid == 4326 ? g : "ST_Transform(ST_SetSRID(\(g), \(literal: srid)), 4326)"
        let keys = index.keys(lon: "__p.lon", lat: "__p.lat")
        let keyColumns = keys.map { SQL(unsafeRaw: $0.name) }
        let keyNames = keys.map { "_src.\($0.name)" }.joined(separator: ", ")
        // aggregationExp is client SQL over the source's columns: users may send any; SourceAccess only lets
        // scoped tokens send simple aggregates.
        let aggregation = SQL(unsafeRaw: d.aggregationExp ?? "count(*) AS count")
        let whereClause: SQL = conditions.isEmpty ? "" : "WHERE \(conditions, joinedBy: " AND ")"
        return """
              SELECT \(unsafeRaw: keyNames), \(aggregation)
              FROM (
                SELECT \(keys.map { "\($0.sql) AS \(unsafeRaw: $0.name)" as SQL }, joinedBy: ", "), _src.*
                FROM \(from) AS _src CROSS JOIN LATERAL (SELECT ST_X(__g) AS lon, ST_Y(__g) AS lat FROM (SELECT \(point) AS __g) __q) AS __p
                \(whereClause)
              ) AS _src
              GROUP BY \(keyColumns, joinedBy: ", ")
            """
    }

    /// TileJSON `tilestats.layers[0].attributes` of an aggregated source: min/max/sum/avg of each
    /// aggregationExp column over the cells of the slot `resolution` (fetchMap's colour domains), as one
    /// JSON array. `cells` is `cellsSQL` (points) or `Quadbin.cellsSQL` (a cell column); `keys` its key columns.
    static func attributesSQL(cells: SQL, keys: [String]) -> SQL {
        var strip: SQL = "to_jsonb(t)"
        for key in keys { strip += " - '\(unsafeRaw: key)'" }
        let number: SQL = "CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value #>> '{}')::float8 END"
        return """
            SELECT coalesce(json_agg(a ORDER BY a.attribute), '[]')::text FROM (
              SELECT e.key AS attribute,
                     CASE WHEN bool_and(jsonb_typeof(e.value) IN ('number', 'null')) THEN 'Number' ELSE 'String' END AS type,
                     min(\(number)) AS min, max(\(number)) AS max, sum(\(number)) AS sum, avg(\(number)) AS avg
              FROM (
            \(cells)
              ) t, jsonb_each(\(strip)) e
              GROUP BY e.key
            ) a
            """
    }

    /// The resolution a tile at zoom `z` aggregates to: `aggregationResLevel` levels below the tile, but
    /// never finer than the data's reference resolution, nor more cells than the per-tile feature budget
    /// (a quadbin tile holds 4^levels cells, an H3 one about 7^levels).
    static func resolution(z: Int, level: Int, dataResolution: Int, maxFeatures: Int, index: CellIndex = .quadbin) -> Int {
        // A quadbin cell has 4 children, an H3 cell about 7.
        let branching = index == .quadbin ? 4 : 7
        var budgetLevels = 0, cells = 1
        while budgetLevels < index.maxResolution && cells * branching <= maxFeatures { budgetLevels += 1; cells *= branching }
        return max(z, min(z + level, z + budgetLevels, dataResolution))
    }

    /// The bound values of `tileSQL` for one quadbin tile.
    static func parameters(_ sql: SQL, z: Int, x: Int, y: Int, resolution: Int) -> [String?] {
        sql.parameters(filling: ["z": String(z), "x": String(x), "y": String(y), "resolution": String(resolution),
                                 "shift": String(resolution - z), "tile": nil])!
    }

    /// The bound values of `tileSQL(index: .h3)` for the H3 tile `tile` (a cell at resolution `z`).
    static func h3Parameters(_ sql: SQL, tile: UInt64, z: Int, resolution: Int) -> [String?] {
        sql.parameters(filling: ["z": String(z), "tile": String(Int64(bitPattern: tile)), "resolution": String(resolution)])!
    }
}
