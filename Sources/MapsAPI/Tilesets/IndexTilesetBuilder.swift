import Foundation
import HTTPKit
import Platform
import Postgres
import SQLKit

/// Pre-generated spatial-index tilesets (`h3TilesetSource`, `quadbinTilesetSource`): for every tile
/// resolution in the range, each tile cell's data cells `aggregationResLevel` resolutions finer (at most
/// the data's), aggregated with `aggregationExp`, stored as the `[{id, properties}]` JSON deck.gl's H3 and
/// quadbin tile layers read. The table is `(cell bigint PRIMARY KEY, data text)`: a tile is one row read by
/// its own cell id, and the cell id carries the resolution. One statement per resolution, so the work is
/// the warehouse's.
public enum IndexTilesetBuilder {
    /// Pure: the tiles of the slot `tileResolution` from the cells of `cells` (at the slot `resolution`),
    /// each tile's cells in cell order so the same data gives the same bytes.
    static func insertSQL(into staging: SQL, cells: SQL, index: CellIndex) -> SQL {
        let tile: SQL = index == .h3 ? "carto.h3_toparent(t.__cell, \(SQL.slot("tileResolution"))::int)"
            : "carto.quadbin_toparent(t.__cell, \(SQL.slot("tileResolution"))::int)"
        let id: SQL = index == .h3 ? "carto.h3_int_tostring(t.__cell)" : "lpad(to_hex(t.__cell), 16, '0')"
        return """
            INSERT INTO \(staging) (cell, data)
            SELECT \(tile), json_agg(json_build_object('id', \(id), 'properties', to_jsonb(t) - '__cell') ORDER BY t.__cell)::text
            FROM (
            \(cells)
            ) t GROUP BY 1
            """
    }

    public static func build(connection db: PGConnection, options o: TilesetBuilder.Options, index indexName: String,
                             aggregationExp: String, aggregationResLevel: Int?, progress: (Int, Int) -> Void) throws -> TilesetBuilder.Summary {
        let started = Date()
        guard let index = CellIndex(rawValue: indexName) else {
            throw APIError.badRequest("--spatial-index must be h3 or quadbin", code: "invalid_parameter")
        }
        guard (0...index.maxResolution).contains(o.minzoom), (o.minzoom...index.maxResolution).contains(o.maxzoom) else {
            throw APIError.badRequest("minzoom/maxzoom: \(index.rawValue) tile resolutions are 0…\(index.maxResolution) with minzoom ≤ maxzoom",
                                      code: "invalid_parameter")
        }
        var d = SourceDefinition(kind: o.query == nil ? .table : .query, connection: "")
        d.name = o.table
        d.sql = o.query
        d.spatialType = index == .h3 ? .h3 : .quadbin
        d.spatialColumn = o.spatialColumn
        d.aggregationExp = aggregationExp
        d.aggregationResLevel = aggregationResLevel ?? (index == .quadbin ? 6 : 4)
        let record = try SourceInspector(connection: db, watch: .none).inspect(d, id: "tileset")
        guard !record.aggregatesPoints, let dataResolution = record.dataResolution else {
            throw APIError.badRequest("--spatial-column \(o.spatialColumn) must hold \(index.rawValue) cell ids", code: "invalid_parameter")
        }
        let cells = index == .h3 ? try H3Cells.cellsSQL(record) : try Quadbin.cellsSQL(record)
        let name = try QualifiedName.parameter(o.name, named: "tileset name")
        let building = QualifiedName(schema: name.schema, table: name.table + "__building")
        try db.execute("DROP TABLE IF EXISTS \(building)" as SQL)
        try db.execute("CREATE TABLE \(building) (cell bigint PRIMARY KEY, data text NOT NULL)" as SQL)
        let insert = insertSQL(into: building.identifier, cells: cells, index: index)
        var tiles = 0
        for r in o.minzoom...o.maxzoom {
            let resolution = min(dataResolution, r + (d.aggregationResLevel ?? 0))
            guard resolution >= r else { break } // tiles finer than the data hold nothing
            let written = try db.execute(insert.text, insert.parameters(filling: ["tileResolution": String(r), "resolution": String(resolution)])!)
            tiles += written.affectedRows ?? 0
            progress(r, tiles)
        }
        let maxzoom = min(o.maxzoom, dataResolution)
        // TileJSON attributes over the coarsest tiles' cells, as the live index sources give them.
        let attributesSQL = CellAggregation.attributesSQL(cells: cells, keys: ["__cell"])
        let resolution = min(dataResolution, o.minzoom + (d.aggregationResLevel ?? 0))
        let text = try db.execute(attributesSQL.text, attributesSQL.parameters(filling: ["resolution": String(resolution)])!).string(0, 0) ?? "[]"
        let attributes = try JSON.decode(Array(text.utf8))
        let columns: [(String, ColumnKind)] = [(index.rawValue, index == .h3 ? .string : .number)]
            + (attributes.arrayValue ?? []).compactMap { a in
                a["attribute"]?.stringValue.map { ($0, a["type"]?.stringValue == "Number" ? ColumnKind.number : .string) }
            }
        let bytes = try db.execute("SELECT coalesce(sum(length(data)), 0)::bigint FROM \(building)" as SQL).int(0, 0) ?? 0
        let tilejson: JSON = [
            "tilejson": "3.0.0", "name": .string(o.name), "scheme": .string(index.rawValue), "tiles": [],
            "minzoom": .int(o.minzoom), "maxzoom": .int(maxzoom), "minresolution": .int(o.minzoom), "maxresolution": .int(maxzoom),
            "bounds": [-180, .number(-85.0511), 180, .number(85.0511)], "center": [0, 0, .int(o.minzoom)],
            "spatial_index": ["column": .string(o.spatialColumn), "data_resolution": .int(dataResolution)],
            "tilestats": ["layerCount": 1, "layers": [["layer": "default", "geometry": "Polygon", "count": .int(tiles),
                                                       "attributeCount": .int(attributes.arrayValue?.count ?? 0), "attributes": attributes]]],
            "schema": SourceSchema(columns: columns).json,
        ]
        try TilesetBuilder.publish(connection: db, key: o.name, name: name, building: building, tilejson: tilejson)
        return TilesetBuilder.Summary(tiles: tiles, bytes: bytes, seconds: Date().timeIntervalSince(started))
    }
}
