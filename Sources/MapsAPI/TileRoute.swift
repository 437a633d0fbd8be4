import Foundation
import HTTPKit
import Observability
import Platform
import Postgres
import SQLKit

/// `GET /api/v3/maps/{connection}/{type}/{z}/{x}/{y}?source=<id>&formatTiles=mvt`: a Mapbox Vector Tile
/// built in PostGIS, or 204 when the tile is empty. Per-tile budgets on features and bytes drop features
/// deterministically; the statement timeout bounds the time.
struct TileRoute: Sendable {
    let maps: MapsService
    static let maxZoom = 24
    /// Bytes of each vector tile built (0 for an empty tile), before nginx compresses it.
    static let sizes = Metrics.shared.histogram("tessera_tile_size_bytes", "Vector tile sizes as built, before compression.",
                                                [("format", "mvt")], buckets: Metrics.sizeBuckets)

    /// `…/{type}/{i}`: a quadbin tile addressed by its cell id, answered as JSON `[{id, properties}]`.
    func handleCell(_ request: HTTPRequest) throws -> HTTPResponse {
        let i = request.pathParameters["i"] ?? ""
        if let (cell, resolution) = H3Cells.cell(hex: i) { return try h3Tile(request, cell: cell, tileResolution: resolution) }
        guard let (z, x, y) = Quadbin.tile(hex: i) else {
            throw APIError.badRequest("Tile index must be a quadbin or H3 cell in hexadecimal", code: "invalid_tile")
        }
        let (principal, record) = try source(request)
        guard record.definition.spatialType != .h3 else {
            throw APIError.badRequest("H3 sources are tiled by H3 cell: {i} must be an H3 cell index", code: "invalid_tile")
        }
        if record.definition.kind == .raster { return try rasterTile(request, principal, record, z: z) }
        if record.definition.kind == .tileset, record.definition.spatialType == .quadbin {
            return try storedCellTile(request, principal, record, cell: UInt64(i, radix: 16) ?? 0)
        }
        guard record.definition.spatialType == .quadbin, let dataResolution = record.dataResolution else {
            throw APIError.badRequest("This source is not a quadbin source; use {z}/{x}/{y} tiles", code: "invalid_tile")
        }
        let headers = Self.cacheHeaders(request, principal, record)
        if z > dataResolution { return .noContent(headers: headers) }
        let config = maps.services.config
        let level = record.definition.aggregationResLevel ?? 6
        let json: String, path: [(String, String)]
        if record.aggregatesPoints {
            let resolution = CellAggregation.resolution(z: z, level: level, dataResolution: dataResolution, maxFeatures: config.tileMaxFeatures)
            let sql = try CellAggregation.tileSQL(record, index: .quadbin)
            let answer = try aggregatedTile(request, principal, record, index: .quadbin, z: z, x: x, y: y, resolution: resolution,
                                            live: (sql, CellAggregation.parameters(sql, z: z, x: x, y: y, resolution: resolution)))
            json = answer.json
            path = Self.aggregationHeader(answer.precomputed)
        } else {
            let resolution = min(z + level, dataResolution)
            let sql = try Quadbin.tileSQL(record)
            let parameters = Quadbin.parameters(sql, z: z, x: x, y: y, resolution: resolution, dataResolution: dataResolution)
            json = try maps.withWarehouse(principal, record.definition.connection, request: request) { db -> String in
                let r = try db.execute(sql.text, parameters, watch: maps.watch(request), prepare: true, lastOfCheckout: true)
                return r.string(0, 0) ?? "[]"
            }
            path = []
        }
        if json == "[]" { return .noContent(headers: headers + path) }
        // The byte budget, as for vector tiles (the cell count is bounded by the resolution chosen).
        if json.utf8.count > config.tileMaxBytes { return .noContent(headers: headers + path) }
        return .json(encoded: Array(json.utf8), headers: headers + path)
    }

    /// `…/{type}/{i}` of an H3 source: deck.gl's H3 tiles are H3 cells; the answer is the data cells under the
    /// tile, `aggregationResLevel` resolutions finer (at most the data's and the feature budget's), as JSON
    /// `[{id, properties}]` with `id` the H3 hex string.
    func h3Tile(_ request: HTTPRequest, cell: UInt64, tileResolution: Int) throws -> HTTPResponse {
        let (principal, record) = try source(request)
        guard record.definition.spatialType == .h3, let dataResolution = record.dataResolution else {
            throw APIError.badRequest("This source is not an H3 source; {i} must be a quadbin cell", code: "invalid_tile")
        }
        if record.definition.kind == .tileset { return try storedCellTile(request, principal, record, cell: cell) }
        let headers = Self.cacheHeaders(request, principal, record)
        if tileResolution > dataResolution { return .noContent(headers: headers) }
        let config = maps.services.config
        let resolution = CellAggregation.resolution(z: tileResolution, level: record.definition.aggregationResLevel ?? 4,
                                                    dataResolution: dataResolution, maxFeatures: config.tileMaxFeatures, index: .h3)
        let sql = record.aggregatesPoints ? try CellAggregation.tileSQL(record, index: .h3) : try H3Cells.tileSQL(record)
        let parameters = CellAggregation.h3Parameters(sql, tile: cell, z: tileResolution, resolution: resolution)
        let json: String, path: [(String, String)]
        if record.aggregatesPoints {
            let answer = try aggregatedTile(request, principal, record, index: .h3, z: tileResolution, x: 0, y: 0, h3Cell: cell,
                                            resolution: resolution, live: (sql, parameters))
            json = answer.json
            path = Self.aggregationHeader(answer.precomputed)
        } else {
            json = try maps.withWarehouse(principal, record.definition.connection, request: request) { db -> String in
                try db.execute(sql.text, parameters, watch: maps.watch(request), prepare: true, lastOfCheckout: true).string(0, 0) ?? "[]"
            }
            path = []
        }
        if json == "[]" || json.utf8.count > config.tileMaxBytes { return .noContent(headers: headers + path) }
        return .json(encoded: Array(json.utf8), headers: headers + path)
    }

    /// Which path answered an aggregated tile: `precomputed` levels or the `live` grouping (tests and ops read it).
    static func aggregationHeader(_ precomputed: Bool) -> [(String, String)] {
        [("X-Tessera-Aggregation", precomputed ? "precomputed" : "live")]
    }

    /// A tile of a spatial-index tileset: one stored row, 204 where the tileset has none (outside its
    /// resolutions or its data).
    func storedCellTile(_ request: HTTPRequest, _ principal: Principal, _ record: SourceRecord, cell: UInt64) throws -> HTTPResponse {
        let headers = Self.cacheHeaders(request, principal, record)
        let json = try maps.withWarehouse(principal, record.definition.connection, request: request) { db in
            try TilesetSource.cellTile(record, cell: cell, connection: db, watch: maps.watch(request))
        }
        guard let json else { return .noContent(headers: headers) }
        return .json(encoded: Array(json.utf8), headers: headers)
    }

    /// A raster block: the native blocks and their overviews share the table, each level keyed by its own
    /// quadbin cell, so the cell asked for picks the level; zooms past the native one (or under the
    /// coarsest overview of an older table) have no row and answer 204.
    func rasterTile(_ request: HTTPRequest, _ principal: Principal, _ record: SourceRecord, z: Int) throws -> HTTPResponse {
        let headers = Self.cacheHeaders(request, principal, record)
        guard z <= record.dataResolution ?? 0, let cell = UInt64(request.pathParameters["i"] ?? "", radix: 16) else {
            return .noContent(headers: headers)
        }
        // Band types come from the metadata; schema columns after `block` are the bands, in order.
        let bytes = try maps.withWarehouse(principal, record.definition.connection, request: request) { db -> [UInt8]? in
            let watch = maps.watch(request)
            let (metadata, _) = try RasterSource.metadata(record.definition.name ?? "", connection: db, watch: watch)
            let bands = (metadata["bands"]?.arrayValue ?? []).map {
                ($0["name"]?.stringValue ?? "", $0["type"]?.stringValue ?? "float64", $0["nodata"]?.doubleValue ?? .nan)
            }
            return try RasterSource.tile(record, cell: cell, bands: bands, connection: db, watch: watch)
        }
        guard let bytes else { return .noContent(headers: headers) }
        return HTTPResponse(status: 200, headers: headers + [("Content-Type", "application/vnd.carto-raster-tile")], body: .bytes(bytes))
    }

    /// The authenticated principal and the authorized source named by `source=`.
    func source(_ request: HTTPRequest) throws -> (Principal, SourceRecord) {
        let query = try request.queryParameters()
        guard let id = query["source"], !id.isEmpty else {
            throw APIError.badRequest("Missing required parameter: source (use the tiles URL from the TileJSON)", code: "missing_parameter")
        }
        let principal = try maps.services.auth.authenticate(request, api: "maps")
        let record = try maps.sources.load(id: id, account: principal.accountId)
        guard record.definition.connection == request.pathParameters["connection"] else {
            throw APIError.notFound("Source not found", code: "source_not_found")
        }
        try SourceAccess.authorize(principal, record.definition)
        return (principal, record)
    }

    func handle(_ request: HTTPRequest) throws -> HTTPResponse {
        let (z, x, y) = try Self.coordinates(request.pathParameters)
        let query = try request.queryParameters()
        if let format = query["formatTiles"], !format.isEmpty, format != "mvt" {
            throw APIError.badRequest("formatTiles=\(format) is not supported; use mvt", code: "unsupported_format")
        }
        let (principal, record) = try source(request)
        let connection = record.definition.connection
        guard record.definition.spatialType.index == nil else {
            throw APIError.badRequest("Quadbin and H3 sources are tiled by cell: use the {i} tiles URL from the TileJSON", code: "invalid_tile")
        }

        let config = maps.services.config
        let thinning = Thinning.plan(record, cap: config.tileMaxFeatures).flatMap { z <= $0.maxZoom ? $0 : nil }
        var thinned = false
        let levelled = thinning.flatMap { Self.thinningLevelsKey(record, $0, z: z) }
        // An interim TileJSON's tiles never read the levels (ThinningLevels.interimParameter).
        let interim = query[ThinningLevels.interimParameter.name] == ThinningLevels.interimParameter.value
        let levelsKey = interim ? nil : levelled
        var fromLevels = false
        func render(rememberedLevels: Bool) throws -> [UInt8] { try maps.withWarehouse(principal, connection, request: request) { db -> [UInt8] in
            let watch = maps.watch(request)
            if record.definition.kind == .tileset { return try TilesetSource.tile(record, z: z, x: x, y: y, connection: db, watch: watch) }
            if record.definition.boundaryTileset { return try BoundaryTileset.tile(record, z: z, x: x, y: y, connection: db, watch: watch) }
            if let thinning {
                var bytes: [UInt8]
                if let levelsKey, let found = try thinnedFromLevels(record, thinning, key: levelsKey, account: principal.accountId,
                                                                     remembered: rememberedLevels, db, z, x, y, watch) {
                    bytes = found
                    fromLevels = true
                } else {
                    // Queued before the per-request thinning, which may take until the statement timeout.
                    if let levelsKey { queueThinningLevels(record, key: levelsKey, account: principal.accountId) }
                    (bytes, _) = try Self.runThinned(maps, record, thinning, levelled: levelsKey != nil, db, z, x, y, watch)
                }
                // The byte budget still holds: a tile of very wide rows falls back to the capped subset below.
                if bytes.count <= config.tileMaxBytes {
                    thinned = true
                    return bytes
                }
            }
            var cap = config.tileMaxFeatures
            // A tile that certainly holds many times the cap (a low zoom of a big table) goes straight to the
            // capped subset; every other tile is tried in scan order first, which is all most tiles need.
            let certainlyOver = try record.definition.kind == .table
                && maps.tileSQL(record, .sampled).samplePercent(rows: record.rows, z: z, x: x, y: y, cap: cap) != nil
            var (bytes, count) = certainlyOver ? try capped(record, db, z, x, y, cap: cap, watch)
                : try Self.run(try maps.tileSQL(record, .fast), db, z, x, y, cap: cap + 1, watch)
            var attempts = 0
            // Over budget: keep a deterministic subset, shrinking until the bytes fit too.
            while (count > cap || bytes.count > config.tileMaxBytes) && attempts < 4 {
                if bytes.count > config.tileMaxBytes {
                    cap = max(1, min(cap, Int(Double(min(count, cap)) * Double(config.tileMaxBytes) / Double(bytes.count) * 0.9)))
                }
                (bytes, count) = try capped(record, db, z, x, y, cap: cap, watch)
                attempts += 1
                if count <= cap && bytes.count <= config.tileMaxBytes { break }
            }
            return bytes.count > config.tileMaxBytes ? [] : bytes
        } }
        let tile: [UInt8]
        do { tile = try render(rememberedLevels: true) } catch where Self.levelsRelationGone(error)
            && levelsKey.map { maps.levelRelation(principal.accountId, connection, $0) != nil } == true {
            // The remembered levels relation was replaced and dropped by a rebuild since: forgotten, and the tile made
            // again on a new session (the error ended the first one's transaction).
            maps.rememberLevelRelation(principal.accountId, connection, levelsKey!, nil)
            thinned = false
            fromLevels = false
            tile = try render(rememberedLevels: false)
        }
        Self.sizes.observe(Double(tile.count))
        var headers = Self.cacheHeaders(request, principal, record)
        if let thinning, thinned {
            // What the builder shows as "thinned at this zoom" (the TileJSON's fraction_dropped_per_zoom says how much).
            headers.append(("X-Tessera-Thinning", "\(thinning.perCell) per cell of 1/\(thinning.cellsPerSide) tile; zooms 0-\(thinning.maxZoom)"))
            // Which path made it, as X-Tessera-Aggregation says for aggregated tiles.
            if levelled != nil { headers.append(("X-Tessera-Thinning-Levels", interim ? "interim" : fromLevels ? "precomputed" : "live")) }
        }
        if tile.isEmpty { return .noContent(headers: headers) }
        headers.append(("Content-Type", "application/vnd.mapbox-vector-tile"))
        return HTTPResponse(status: 200, headers: headers, body: .bytes(tile))
    }

    /// At most `cap` features chosen deterministically: from a repeatable sample of the table when the tile
    /// covers far more rows than that (a low zoom of a big table), else from every row in the tile.
    func capped(_ record: SourceRecord, _ db: PGConnection, _ z: Int, _ x: Int, _ y: Int, cap: Int,
                _ watch: PGConnection.Watch) throws -> ([UInt8], Int) {
        if record.definition.kind == .table {
            let sampled = try maps.tileSQL(record, .sampled)
            if let percent = sampled.samplePercent(rows: record.rows, z: z, x: x, y: y, cap: cap) {
                let (bytes, count) = try Self.run(sampled, db, z, x, y, cap: cap, watch, samplePercent: percent)
                if count >= cap { return (bytes, count) }  // the sample filled the tile
            }
        }
        return try Self.run(try maps.tileSQL(record, .ordered), db, z, x, y, cap: cap, watch)
    }

    /// A seamlessly thinned tile (see `Thinning`): features and their count.
    /// `levelled`: the tile may stand beside precomputed ones (Thinning.samplePercent).
    static func runThinned(_ maps: MapsService, _ record: SourceRecord, _ thinning: Thinning, levelled: Bool, _ db: PGConnection,
                           _ z: Int, _ x: Int, _ y: Int, _ watch: PGConnection.Watch) throws -> ([UInt8], Int) {
        let percent = record.definition.kind == .table
            ? thinning.samplePercent(z: z, ordered: record.definition.thinningOrder != nil, levelled: levelled) : nil
        let sql = try maps.tileSQL(record, percent == nil ? .thinned : .thinnedSampled)
        guard let parameters = sql.thinnedParameters(thinning, z: z, x: x, y: y, samplePercent: percent) else { return ([], 0) }
        let r = try db.execute(sql.text, parameters, watch: watch, prepare: true, binaryResult: true, lastOfCheckout: true)
        let count = r.bytes(0, 1).map { $0.reduce(0) { $0 << 8 | Int($1) } } ?? 0
        return (r.bytes(0, 0) ?? [], count)
    }

    /// Each tile statement is usually the checkout's only one (the session reset rides behind it); the rare
    /// over-cap tile runs another, which only costs that checkout the reset's own round trip.
    static func run(_ sql: TileSQL, _ db: PGConnection, _ z: Int, _ x: Int, _ y: Int, cap: Int,
                    _ watch: PGConnection.Watch, samplePercent: Double? = nil) throws -> ([UInt8], Int) {
        guard let parameters = sql.parameters(z: z, x: x, y: y, cap: cap, samplePercent: samplePercent) else { return ([], 0) }
        let r = try db.execute(sql.text, parameters, watch: watch, prepare: true, binaryResult: true, lastOfCheckout: true)
        let count = r.bytes(0, 1).map { $0.reduce(0) { $0 << 8 | Int($1) } } ?? 0  // int8, big-endian in binary
        return (r.bytes(0, 0) ?? [], count)
    }

    /// Integers only, 0 ≤ z ≤ 24 and 0 ≤ x, y < 2^z; anything else is a 400 before any query.
    static func coordinates(_ p: [String: String]) throws -> (Int, Int, Int) {
        func parse(_ name: String) throws -> Int {
            guard let text = p[name], text.count <= 9, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber), let n = Int(text) else {
                throw APIError.badRequest("Tile coordinate \(name) must be a non-negative integer", code: "invalid_tile")
            }
            return n
        }
        let z = try parse("z"), x = try parse("x"), y = try parse("y")
        guard z <= maxZoom else { throw APIError.badRequest("Zoom must be at most \(maxZoom)", code: "invalid_tile") }
        guard x < 1 << z, y < 1 << z else { throw APIError.badRequest("Tile x/y out of range for zoom \(z)", code: "invalid_tile") }
        return (z, x, y)
    }

    /// Contract §1.6: table sources 30 min (PostgreSQL), query sources and tilesets a year; the URL carries
    /// the source id and data version.
    static func cacheHeaders(_ request: HTTPRequest, _ principal: Principal, _ record: SourceRecord) -> [(String, String)] {
        CachePolicy.headers(request, principal: principal, maxAge: record.definition.kind == .table || record.definition.kind == .raster ? 1800 : 31_536_000,
                            connection: record.definition.connection, source: record.id)
    }
}
