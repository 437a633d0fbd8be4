import Foundation
import HTTPKit
import Platform
import Postgres

/// `GET|POST /api/v3/maps/{connection}/{table|query|tileset}`: the handshake, or — with `source=<id>` — the
/// source's TileJSON (the URL the handshake returned).
struct SourceRoute: Sendable {
    let maps: MapsService
    static let quadbinCenterZoom = 2

    func handle(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try maps.services.auth.authenticate(request, api: "maps")
        let connection = request.pathParameters["connection"]!
        let p = try Parameters.from(request, bodyLimit: maps.services.config.maxBodyBytes)
        if let id = p.string("source"), !id.isEmpty {
            return try tileJSON(request, principal, connection, id: id, p)
        }
        let kindName = request.path.split(separator: "/").last.map(String.init) ?? ""
        guard let kind = SourceDefinition.Kind(rawValue: kindName) else { throw APIError.notFound() }
        let definition = try SourceDefinition.parse(kind: kind, connection: connection, p)
        try SourceAccess.authorize(principal, definition)
        if kind == .raster { return try RasterSource.handshake(definition, principal: principal, maps: maps, request: request) }
        if kind == .tileset { return try TilesetSource.handshake(definition, principal: principal, maps: maps, request: request) }
        if kind == .boundary, let response = try BoundaryTileset.handshake(definition, principal: principal, maps: maps, request: request) {
            return response
        }
        let id = definition.id(account: principal.accountId)
        let (record, rows, version) = try maps.withWarehouse(principal, connection, request: request) { db in
            let inspector = SourceInspector(connection: db, watch: maps.watch(request))
            if kind == .boundary { try BoundarySource.checkJoin(definition, connection: db, watch: maps.watch(request)) }
            var record = try inspector.inspect(definition, id: id)
            // A thinningOrder that is not a numeric column is the handshake's 400, not every tile's.
            if definition.thinningOrder != nil { _ = try TileSQL.make(record, mode: .thinned) }
            let plan = try inspector.plan(definition)
            record.rows = try inspector.rowCount(definition, plan: plan)
            if (record.rows ?? 0) <= Thinning.exactCountRows, let filtered = try inspector.filteredRowCount(record, limit: Thinning.exactCountRows) {
                record.rows = min(record.rows ?? filtered, filtered)
            }
            return (record, record.rows ?? 0, try inspector.dataVersion(plan: plan))
        }
        try maps.sources.save(record, account: principal.accountId)
        let tilejson = maps.url("/v3/maps/\(connection)/\(kind.rawValue)",
                                [("source", id), ("format", "tilejson"), ("cache", String(version))])
        return .json(["nrows": .int(rows), "schema": record.schema.json, "tilejson": ["url": [.string(tilejson)]]],
                     headers: [("Cache-Control", "no-store")])
    }

    func tileJSON(_ request: HTTPRequest, _ principal: Principal, _ connection: String, id: String, _ p: Parameters) throws -> HTTPResponse {
        let record = try maps.sources.load(id: id, account: principal.accountId)
        let d = record.definition
        guard d.connection == connection else { throw APIError.notFound("Source not found", code: "source_not_found") }
        try SourceAccess.authorize(principal, d)
        let cache = p.string("cache").flatMap(Int.init) ?? 0
        if d.kind == .raster {
            let tiles = maps.url("/v3/maps/\(connection)/raster/{i}",
                                 [("source", id), ("cache", String(cache)), ("formatTiles", "binary"), ("spatialIndex", "quadbin")])
            let body = try RasterSource.tileJSON(record, tiles: tiles, maps: maps, principal: principal, request: request)
            return .json(body, headers: TileRoute.cacheHeaders(request, principal, record))
        }
        if d.kind == .tileset, let index = d.spatialType.index {
            let tiles = maps.url("/v3/maps/\(connection)/tileset/{i}",
                                 [("source", id), ("cache", String(cache)), ("formatTiles", "json"), ("spatialIndex", index.rawValue)])
            let body = try TilesetSource.tileJSON(record, tiles: tiles, maps: maps, principal: principal, request: request)
            return .json(body, headers: TileRoute.cacheHeaders(request, principal, record))
        }
        if let index = d.spatialType.index {
            let tiles = maps.url("/v3/maps/\(connection)/\(d.kind.rawValue)/{i}",
                                 [("source", id), ("cache", String(cache)), ("formatTiles", "json"), ("spatialIndex", index.rawValue)])
            let dataResolution = record.dataResolution ?? 0, level = d.aggregationResLevel ?? (index == .quadbin ? 6 : 4)
            let maxResolution = max(0, dataResolution - level)
            // Attributes over the cells a map opened at the center's zoom (2) shows, as fetchMap's colour
            // domains read them (deck.gl's H3 tiles at zoom 2 are resolution 0).
            let resolution = min(dataResolution, (index == .quadbin ? Self.quadbinCenterZoom : 0) + level)
            let (cells, keys) = record.aggregatesPoints
                ? (try CellAggregation.cellsSQL(record, index: index, inTile: false), index == .quadbin ? ["__x", "__y"] : ["__cell"])
                : index == .quadbin ? (try Quadbin.cellsSQL(record), ["__cell"]) : (try H3Cells.cellsSQL(record), ["__cell"])
            let levelsKey = record.aggregatesPoints ? AggregationLevels.key(record, index: index) : nil
            let attributes = try maps.withWarehouse(principal, connection, request: request) { db -> JSON in
                // Points grouped over the whole table: the precomputed levels hold these cells when fresh.
                var sql = CellAggregation.attributesSQL(cells: cells, keys: keys)
                if let levelsKey {
                    if let relation = try TileRoute.freshLevels(db, record, key: levelsKey, resolution: resolution, watch: maps.watch(request)) {
                        sql = CellAggregation.attributesSQL(cells: try AggregationLevels.cellsSQL(relation: relation),
                                                            keys: AggregationLevels.keyColumns(index))
                    } else {
                        // Not built or stale: queue the build (before the live grouping, which may reach the statement
                        // timeout), so that a big table's next TileJSON is answered from the levels.
                        TileRoute(maps: maps).queueLevels(record, key: levelsKey, account: principal.accountId, resolution: resolution)
                    }
                }
                let parameters = sql.parameters(filling: ["resolution": String(resolution)])!
                let text = try db.execute(sql.text, parameters, watch: maps.watch(request)).string(0, 0) ?? "[]"
                return try JSON.decode(Array(text.utf8))
            }
            return .json(["tilejson": "3.0.0", "scheme": .string(index.rawValue), "tiles": [.string(tiles)],
                          "minresolution": 0, "maxresolution": .int(maxResolution), "minzoom": 0, "maxzoom": .int(maxResolution),
                          "bounds": [-180, .number(-85.0511), 180, .number(85.0511)], "center": [0, 0, .int(Self.quadbinCenterZoom)],
                          "tilestats": ["layerCount": 1, "layers": [["layer": "default", "geometry": "Polygon",
                                                                     "attributeCount": .int(attributes.arrayValue?.count ?? 0),
                                                                     "attributes": attributes]]]],
                         headers: TileRoute.cacheHeaders(request, principal, record))
        }
        let tiles = maps.url("/v3/maps/\(connection)/\(d.kind.rawValue)/{z}/{x}/{y}",
                             [("source", id), ("cache", String(cache)), ("formatTiles", "mvt")])
        if d.boundaryTileset {
            let body = try BoundaryTileset.tileJSON(record, tiles: tiles, maps: maps, principal: principal, request: request)
            return .json(body, headers: TileRoute.cacheHeaders(request, principal, record))
        }
        if d.kind == .tileset {
            let body = try TilesetSource.tileJSON(record, tiles: tiles, maps: maps, principal: principal, request: request)
            return .json(body, headers: TileRoute.cacheHeaders(request, principal, record))
        }
        let interimTiles = maps.url("/v3/maps/\(connection)/\(d.kind.rawValue)/{z}/{x}/{y}",
                                    [("source", id), ("cache", String(cache)), ("formatTiles", "mvt"),
                                     (ThinningLevels.interimParameter.name, ThinningLevels.interimParameter.value)])
        let thinning = Thinning.plan(record, cap: maps.services.config.tileMaxFeatures)
        let body = try maps.withWarehouse(principal, connection, request: request) { db in
            try TileJSONBuilder(connection: db, watch: maps.watch(request))
                .build(record, tiles: tiles, interimTiles: interimTiles, thinning: thinning)
        }
        if let thinning, body["thinning"]?["levels"]?.stringValue == "interim", let key = ThinningLevels.key(record, thinning) {
            // The build starts with the map rather than with its first tile; the interim TileJSON is kept briefly.
            TileRoute(maps: maps).queueThinningLevels(record, key: key, account: principal.accountId)
            return .json(body, headers: TileRoute.interimCacheHeaders(request, principal, record))
        }
        return .json(body, headers: TileRoute.cacheHeaders(request, principal, record))
    }
}
