import Foundation
import HTTPKit
import Platform
import Postgres
import SQLKit

/// TileJSON 3.0.0 for a dynamic source: tiles template, zooms, bounds, center, vector_layers and tilestats.
struct TileJSONBuilder {
    let connection: PGConnection
    let watch: PGConnection.Watch
    static let minzoom = 0
    static let maxzoom = 20
    static let layer = "default"

    /// The statement behind the TileJSON's bounds and tilestats: row count, extent, and min/max/sum/avg of
    /// the first 50 numeric properties (returned too, in column order). Pure.
    static func statsSQL(_ record: SourceRecord) throws -> (sql: SQL, numeric: [String]) {
        let d = record.definition
        let from = try SourceSQL.from(d)
        let g = try Identifier(d.spatialColumn)
        let properties = try record.schema.properties(requested: d.tileColumns, spatialColumn: d.spatialColumn)
        let numeric = Array(properties.filter { record.schema.kind(of: $0) == .number }.prefix(50))
        var selects: [SQL] = ["count(*)", "ST_Extent(ST_Transform(ST_SetSRID(_src.\(g)::geometry, \(literal: record.schema.srid)), 4326))::text"]
        for column in numeric {
            let c: SQL = "_src.\(try Identifier(column))"
            selects += ["min(\(c))::float8", "max(\(c))::float8", "sum(\(c))::float8", "avg(\(c))::float8"]
        }
        var sql: SQL = "SELECT \(selects, joinedBy: ", ") FROM \(from) AS _src"
        if let condition = try FilterSQL.condition(d.filters, or: d.filtersOr, schema: record.schema) {
            sql += " WHERE \(condition)"
        }
        return (sql, numeric)
    }

    /// `interimTiles`: the tiles template pinned to the interim thinning (ThinningLevels.interimParameter), used
    /// when the source's levels are not fresh and the interim tiles would differ from them.
    func build(_ record: SourceRecord, tiles: String, interimTiles: String? = nil, thinning: Thinning? = nil) throws -> JSON {
        let d = record.definition
        let properties = try record.schema.properties(requested: d.tileColumns, spatialColumn: d.spatialColumn)
        let (sql, numeric) = try Self.statsSQL(record)
        let r = try connection.execute(sql, watch: watch)
        let count = r.int(0, 0) ?? 0
        let bounds = Self.parseBox(r.string(0, 1)) ?? [-180, -85.0511, 180, 85.0511]
        var attributes: [JSON] = []
        for (i, column) in numeric.enumerated() {
            let base = 2 + i * 4
            attributes.append(["attribute": .string(column), "type": "Number",
                               "min": r.double(0, base).map(JSON.number) ?? .null, "max": r.double(0, base + 1).map(JSON.number) ?? .null,
                               "sum": r.double(0, base + 2).map(JSON.number) ?? .null, "avg": r.double(0, base + 3).map(JSON.number) ?? .null])
        }
        for column in properties where record.schema.kind(of: column) != .number {
            let kind = record.schema.kind(of: column)
            attributes.append(["attribute": .string(column), "type": .string(kind == .boolean ? "Boolean" : kind == .timestamp || kind == .date ? "Timestamp" : "String")])
        }
        let fields = JSON.object(Dictionary(uniqueKeysWithValues: properties.map { column -> (String, JSON) in
            (column, .string(record.schema.kind(of: column) == .number ? "Number" : record.schema.kind(of: column) == .boolean ? "Boolean" : "String"))
        }))
        let geometry = Self.tilestatsGeometry(record.geometryType)
        let center: [Double] = [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, Double(Self.centerZoom(bounds))]
        var tilejson: [String: JSON] = [
            "tilejson": "3.0.0", "name": .string(d.name ?? "query"), "scheme": "xyz",
            "tiles": [.string(tiles)], "minzoom": .int(Self.minzoom), "maxzoom": .int(Self.maxzoom),
            "bounds": .array(bounds.map(JSON.number)), "center": .array(center.map(JSON.number)),
            "tileResolution": .number(d.tileResolution),
            "vector_layers": [["id": .string(Self.layer), "fields": fields, "minzoom": .int(Self.minzoom), "maxzoom": .int(Self.maxzoom),
                               "geometry_type": .string(geometry)]],
            "tilestats": ["layerCount": 1, "layers": [["layer": .string(Self.layer), "count": .int(count),
                                                        "attributeCount": .int(attributes.count), "geometry": .string(geometry),
                                                        "attributes": .array(attributes)]]],
        ]
        if let thinning {
            let sql = try thinning.droppedSQL(record)
            let r = try connection.execute(sql.text, sql.parameters(filling: ["cells": String(thinning.cells(z: thinning.maxZoom))]) ?? [], watch: watch)
            let rows = (0..<r.rowCount).map { (z: r.int($0, 0) ?? 0, total: r.double($0, 1) ?? 0, kept: r.double($0, 2) ?? 0) }
            // CARTO's TileJSON field (carto-api-client's Tilejson type): the share of features dropped per zoom.
            // Fresh precomputed levels serve the low zooms' tiles: their counts are exact (the live path samples big tables).
            var levels: (kept: [Int], total: Int)?
            var fresh = false
            if let key = ThinningLevels.key(record, thinning),
               let relation = try TileRoute.freshThinningLevels(connection, record, key: key, watch: watch) {
                fresh = true
                let comment = try ThinningLevels.commentSQL(relation: relation)
                levels = ThinningLevels.counts(try connection.execute(comment.text, comment.parameters, watch: watch).string(0, 0))
            }
            // No levels yet: the tiles of this TileJSON are the interim ones, sampled, for as long as the client keeps it.
            let interim = !fresh && interimTiles != nil && ThinningLevels.interim(record, thinning)
            if interim, let interimTiles { tilejson["tiles"] = [.string(interimTiles)] }
            let levelled = ThinningLevels.key(record, thinning) != nil && !interim
            tilejson["fraction_dropped_per_zoom"] = .array(thinning.fractionDropped(rows, levels: levels, levelled: levelled).map { .number(($0 * 10_000).rounded() / 10_000) })
            // Tessera's own: how the thinned zooms choose, for the builder's legend note.
            tilejson["thinning"] = ["maxzoom": .int(thinning.maxZoom), "perCell": .int(thinning.perCell),
                                    "cellsPerTile": .int(thinning.cellsPerSide),
                                    "order": d.thinningOrder.map { .string($0.name + ($0.descending ? ":desc" : ":asc")) } ?? "uniform",
                                    "levels": levels != nil ? "precomputed" : interim ? "interim" : "live"]
        }
        return .object(tilejson)
    }

    /// `BOX(w s,e n)` → [w, s, e, n], clamped to Web Mercator's latitude range.
    static func parseBox(_ text: String?, clamp: Bool = true) -> [Double]? {
        guard let text, text.hasPrefix("BOX("), text.hasSuffix(")") else { return nil }
        let numbers = text.dropFirst(4).dropLast().split(whereSeparator: { $0 == " " || $0 == "," }).compactMap { Double($0) }
        guard numbers.count == 4 else { return nil }
        guard clamp else { return numbers }
        return [max(-180, numbers[0]), max(-85.0511, numbers[1]), min(180, numbers[2]), min(85.0511, numbers[3])]
    }

    static func centerZoom(_ b: [Double]) -> Int {
        let span = max(b[2] - b[0], (b[3] - b[1]) * 2, 1e-9)
        return max(0, min(16, Int(log2(360 / span))))
    }

    static func tilestatsGeometry(_ type: String?) -> String {
        switch (type ?? "").uppercased() {
        case "POINT", "MULTIPOINT": return "Point"
        case "LINESTRING", "MULTILINESTRING": return "LineString"
        case "POLYGON", "MULTIPOLYGON": return "Polygon"
        default: return "Unknown"
        }
    }
}
