import Foundation
import HTTPKit
import Platform
import Postgres
import SQLKit

/// `rasterSource` (`GET /api/v3/maps/{connection}/raster?name=…`): the handshake, TileJSON with the
/// `raster_metadata` the client and deck.gl's RasterTileLayer read, and `{i}` tiles in CARTO's binary
/// raster tile encoding. Raster tables are the ones the Imports API writes (see `RasterImport`): one
/// row per 256×256 block, `block` its quadbin cell, `rast` the PostGIS raster, the metadata in the
/// table's comment.
enum RasterSource {
    static let commentPrefix = "tessera_raster:"

    /// The table's metadata comment and identity (its oid changes when an import replaces it). Pure.
    static func metadataSQL(_ table: QualifiedName) -> SQL {
        "SELECT obj_description(c.oid, 'pg_class'), c.oid::bigint FROM pg_class c WHERE c.oid = to_regclass(\(table.qualifiedIdentifier.text))"
    }

    /// One block as PostGIS raster WKB (every band, NW to SE: PostGIS row 1 is the north), decoded here
    /// rather than as a float8[] text per band, which cost more than the rest of the tile. Pure.
    static func tileSQL(_ table: QualifiedName) -> SQL {
        "SELECT ST_AsBinary(t.rast) FROM \(table) AS t WHERE t.block = \(SQL.slot("block"))::bigint"
    }

    /// Reads the metadata of raster table `name`; 400 when it is no raster table made by an import.
    static func metadata(_ name: String, connection db: PGConnection, watch: PGConnection.Watch) throws -> (JSON, Int) {
        let table = try QualifiedName.parameter(name, named: "name", code: "invalid_source")
        let r = try db.execute(metadataSQL(table), watch: watch)
        guard r.rowCount == 1 else {
            throw APIError.notFound("Raster table \(name) not found", code: "table_not_found")
        }
        guard let comment = r.string(0, 0), comment.hasPrefix(commentPrefix),
              let metadata = try? JSON.decode(String(comment.dropFirst(commentPrefix.count))), metadata["bands"]?.arrayValue != nil else {
            throw APIError.badRequest("Table \(name) is not a raster table (import a GeoTIFF through the Imports API)", code: "invalid_source")
        }
        return (metadata, r.int(0, 1) ?? 0)
    }

    /// Stats of a raster table's band (computed over every pixel at import), or nil when `name` is no
    /// raster table; a band the table does not have is a 400 naming the parameter.
    static func bandStats(_ name: String, attribute: String, connection db: PGConnection, watch: PGConnection.Watch) throws -> JSON? {
        let table = try QualifiedName.parameter(name, named: "table", code: "invalid_source")
        let r = try db.execute(metadataSQL(table), watch: watch)
        guard r.rowCount == 1, let comment = r.string(0, 0), comment.hasPrefix(commentPrefix) else { return nil }
        let (metadata, _) = try Self.metadata(name, connection: db, watch: watch)
        let bands = metadata["bands"]?.arrayValue ?? []
        guard let band = bands.first(where: { $0["name"]?.stringValue == attribute }), let stats = band["stats"] else {
            let names = bands.compactMap { $0["name"]?.stringValue }.joined(separator: ", ")
            throw APIError.badRequest("attribute: raster \(name) has no band \(attribute) (bands: \(names))", code: "invalid_parameter")
        }
        return ["attribute": .string(attribute), "type": "Number", "min": stats["min"] ?? .null, "max": stats["max"] ?? .null,
                "avg": stats["mean"] ?? .null, "sum": stats["sum"] ?? .null, "stddev": stats["stddev"] ?? .null,
                "count": stats["count"] ?? .null, "nodata": band["nodata"] ?? .null, "bandType": band["type"] ?? .null]
    }

    static func handshake(_ d: SourceDefinition, principal: Principal, maps: MapsService, request: HTTPRequest) throws -> HTTPResponse {
        let (metadata, version) = try maps.withWarehouse(principal, d.connection, request: request) { db in
            try Self.metadata(d.name ?? "", connection: db, watch: maps.watch(request))
        }
        let bands = metadata["bands"]?.arrayValue ?? []
        _ = try RasterFilter(d.filters, or: d.filtersOr, bands: bands.compactMap { $0["name"]?.stringValue })
        let columns: [(String, ColumnKind)] = [("block", .number)] + bands.compactMap { $0["name"]?.stringValue }.map { ($0, .number) }
        let id = d.id(account: principal.accountId)
        let record = SourceRecord(id: id, definition: d, schema: SourceSchema(columns: columns, srid: 3857), geometryType: nil,
                                  dataResolution: metadata["block_resolution"]?.intValue)
        try maps.sources.save(record, account: principal.accountId)
        let url = maps.url("/v3/maps/\(d.connection)/raster", [("source", id), ("format", "tilejson"), ("cache", String(version))])
        return .json(["nrows": metadata["num_blocks"] ?? 0, "schema": record.schema.json, "tilejson": ["url": [.string(url)]]],
                     headers: [("Cache-Control", "no-store")])
    }

    static func tileJSON(_ record: SourceRecord, tiles: String, maps: MapsService, principal: Principal, request: HTTPRequest) throws -> JSON {
        let (metadata, _) = try maps.withWarehouse(principal, record.definition.connection, request: request) { db in
            try Self.metadata(record.definition.name ?? "", connection: db, watch: maps.watch(request))
        }
        // Tables imported before overviews existed hold their block resolution only.
        let resolution = metadata["block_resolution"] ?? 0, coarsest = metadata["minresolution"] ?? resolution
        return [
            "tilejson": "3.0.0", "name": .string(record.definition.name ?? ""), "scheme": "quadbin", "tiles": [.string(tiles)],
            "minzoom": coarsest, "maxzoom": resolution, "minresolution": coarsest, "maxresolution": resolution,
            "bounds": metadata["bounds"] ?? [-180, .number(-85.0511), 180, .number(85.0511)], "center": metadata["center"] ?? [0, 0, 0],
            "raster_metadata": metadata,
        ]
    }

    /// One block: its bands encoded as the client's raster tile (see `RasterTileEncoding`).
    static func tile(_ record: SourceRecord, cell: UInt64, bands: [(name: String, type: String, nodata: Double)], connection db: PGConnection,
                     watch: PGConnection.Watch) throws -> [UInt8]? {
        let table = try QualifiedName.parameter(record.definition.name ?? "", named: "name", code: "invalid_source")
        let sql = tileSQL(table)
        let r = try db.execute(sql.text, sql.parameters(filling: ["block": String(Int64(bitPattern: cell))])!, watch: watch, prepare: true,
                               binaryResult: true)
        guard r.rowCount == 1, let wkb = r.bytes(0, 0) else { return nil }
        guard let block = try? RasterWKB.decode(wkb), block.bands.count == bands.count,
              block.width == RasterTileEncoding.blockSize, block.height == RasterTileEncoding.blockSize else {
            throw APIError.internalError("Raster block has an unexpected shape")
        }
        var values = block.bands.map(\.values)
        let d = record.definition
        try RasterFilter(d.filters, or: d.filtersOr, bands: bands.map(\.name)).apply(&values, nodata: bands.map(\.nodata))
        return RasterTileEncoding.encode(blockSize: RasterTileEncoding.blockSize,
                                         bands: bands.indices.map { .init(name: bands[$0].name, type: bands[$0].type, values: values[$0]) })
    }
}
