import CryptoSupport
import Foundation
import HTTPKit
import Platform
import Postgres
import SQLKit

/// Serving pre-generated tilesets: the handshake and TileJSON come from the tileset's stored metadata,
/// tiles are single-row reads by primary key.
enum TilesetSource {
    /// The stored TileJSON of a tileset (404 when the name is not a tileset).
    static func metadata(_ name: String, connection db: PGConnection, watch: PGConnection.Watch) throws -> (tilejson: JSON, version: Int) {
        let exists = try db.execute("SELECT to_regclass($1) IS NOT NULL", [TilesetBuilder.metadataTable], watch: watch)
        guard exists.bool(0, 0) == true else { throw notFound(name) }
        let r = try db.execute("SELECT tilejson::text, extract(epoch FROM created_at)::bigint FROM \(TilesetBuilder.metadataTable) WHERE name = $1",
                               [name], watch: watch, prepare: true)
        guard r.rowCount == 1, let text = r.string(0, 0), let json = try? JSON.decode(text) else { throw notFound(name) }
        return (json, r.int(0, 1) ?? 1)
    }

    static func notFound(_ name: String) -> APIError {
        APIError.notFound("Tileset not found: \(name). Create it with `tessera tileset create`.", code: "tileset_not_found")
    }

    static func handshake(_ d: SourceDefinition, principal: Principal, maps: MapsService, request: HTTPRequest) throws -> HTTPResponse {
        let (tilejson, version) = try maps.withWarehouse(principal, d.connection, request: request) { db in
            try metadata(d.name ?? "", connection: db, watch: maps.watch(request))
        }
        let schema = tilejson["schema"] ?? []
        let columns = try (schema.arrayValue ?? []).map { c -> (String, ColumnKind) in
            guard let name = c["name"]?.stringValue, let kind = ColumnKind.allCases.first(where: { $0.schemaType == c["type"]?.stringValue }) else {
                throw APIError.internalError("Tileset metadata is damaged")
            }
            return (name, kind)
        }
        // A spatial-index tileset is tiled by cell ({i}); its record says which index and the finest tiles.
        var d = d
        let scheme = tilejson["scheme"]?.stringValue ?? "xyz"
        if let index = CellIndex(rawValue: scheme) {
            d.spatialType = index == .h3 ? .h3 : .quadbin
            d.spatialColumn = tilejson["spatial_index"]?["column"]?.stringValue ?? index.rawValue
        } else if scheme != "xyz" {
            throw APIError.badRequest("name: \(d.name ?? "") is a tileset of the unsupported scheme \(scheme)", code: "invalid_source")
        }
        let id = d.id(account: principal.accountId)
        try maps.sources.save(SourceRecord(id: id, definition: d, schema: SourceSchema(columns: columns), geometryType: nil,
                                           dataResolution: tilejson["maxresolution"]?.intValue),
                              account: principal.accountId)
        let url = maps.url("/v3/maps/\(d.connection)/tileset", [("source", id), ("format", "tilejson"), ("cache", String(version))])
        let rows = tilejson["tilestats"]?["layers"]?.arrayValue?.first?["count"]?.intValue ?? 0
        return .json(["nrows": .int(rows), "schema": schema, "tilejson": ["url": [.string(url)]]], headers: [("Cache-Control", "no-store")])
    }

    static func tileJSON(_ record: SourceRecord, tiles: String, maps: MapsService, principal: Principal, request: HTTPRequest) throws -> JSON {
        let (tilejson, _) = try maps.withWarehouse(principal, record.definition.connection, request: request) { db in
            try metadata(record.definition.name ?? "", connection: db, watch: maps.watch(request))
        }
        guard case .object(var t) = tilejson else { return tilejson }
        t["tiles"] = [.string(tiles)]
        t["schema"] = nil
        return .object(t)
    }

    /// The stored tile of a spatial-index tileset (`[{id, properties}]` JSON), or nil.
    static func cellTile(_ record: SourceRecord, cell: UInt64, connection db: PGConnection, watch: PGConnection.Watch) throws -> String? {
        let sql = cellTileSQL(try SourceSQL.table(record.definition))
        return try db.execute(sql.text, sql.parameters(filling: ["cell": String(Int64(bitPattern: cell))])!, watch: watch, prepare: true).string(0, 0)
    }

    /// Pure.
    static func cellTileSQL(_ table: QualifiedName) -> SQL {
        "SELECT data FROM \(table) WHERE cell = \(SQL.slot("cell"))::bigint"
    }

    /// The stored tile, or empty.
    static func tile(_ record: SourceRecord, z: Int, x: Int, y: Int, connection db: PGConnection, watch: PGConnection.Watch) throws -> [UInt8] {
        let table = try SourceSQL.table(record.definition)
        let r = try db.execute("SELECT data FROM \(table) WHERE z = \(z) AND x = \(x) AND y = \(y)" as SQL,
                               watch: watch, prepare: true, binaryResult: true)
        return r.bytes(0, 0) ?? []
    }
}
