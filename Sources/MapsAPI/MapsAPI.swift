import Foundation
import HTTPKit
import Platform
import Postgres

/// Maps API v3 routes served by the maps-api program: source instantiation, TileJSON, vector tiles and stats.
public enum MapsAPI {
    public static func register(_ router: Router, services: Services) {
        let maps = MapsService(services: services)
        let sources = SourceRoute(maps: maps)
        let tiles = TileRoute(maps: maps)
        let stats = StatsRoute(maps: maps)
        for type in ["table", "query", "tileset", "boundary"] {
            router.get("/api/v3/maps/{connection}/\(type)", sources.handle)
            router.post("/api/v3/maps/{connection}/\(type)", sources.handle)
            router.get("/api/v3/maps/{connection}/\(type)/{z}/{x}/{y}", tiles.handle)
            router.get("/api/v3/maps/{connection}/\(type)/{i}", tiles.handleCell)
        }
        BasemapRoute(maps: maps).register(router)
        router.get("/api/v3/maps/{connection}/raster", sources.handle)
        router.post("/api/v3/maps/{connection}/raster", sources.handle)
        router.get("/api/v3/maps/{connection}/raster/{i}", tiles.handleCell)
        router.get("/api/v3/stats/{connection}/{attribute}", stats.handle)
        router.post("/api/v3/stats/{connection}/{attribute}", stats.handle)
        router.get("/api/v3/stats/{connection}/{table}/{attribute}", stats.handle)
        // Widget models (contract §5), under the SQL API path.
        let models = ModelRoute(maps: maps)
        router.get("/api/v3/sql/{connection}/model/{model}", models.handle)
        router.post("/api/v3/sql/{connection}/model/{model}", models.handle)
    }
}

/// What the Maps API routes share: services, the source store and connection resolution.
final class MapsService: Sendable {
    let services: Services
    let sources: SourceStore
    /// Tile statements by source id and mode: a source id names a fixed definition, so its text never
    /// changes, and building it (identifier quoting, string assembly) is not redone for every tile.
    let tileStatements = LocalMemo<TileSQL>(ttl: 300)

    init(services: Services) {
        self.services = services
        sources = SourceStore(pool: services.metadata)
    }

    func tileSQL(_ record: SourceRecord, _ mode: TileSQL.Mode) throws -> TileSQL {
        try tileStatements.value("\(record.id):\(mode.rawValue)") { try TileSQL.make(record, mode: mode) }!
    }

    /// A thinned tile of zoom z read from the precomputed thinning levels `relation` of `key` (see ThinningLevels).
    func levelsTileSQL(_ record: SourceRecord, relation: String, z: Int, key: String) throws -> TileSQL {
        try tileStatements.value("\(record.id):levels:\(relation):\(z)") { try TileSQL.make(record, mode: .thinned, levels: (relation, z, key)) }!
    }

    /// The levels relation last found fresh, per account, connection and levels key: a hint that lets a low-zoom
    /// tile skip the catalogue lookup, as its statement checks freshness itself (AggregationLevels.fresh).
    let levelRelations = LocalMemo<String>(ttl: 300)

    func levelRelation(_ account: String, _ connection: String, _ key: String) -> String? {
        levelRelations.value("\(account):\(connection):\(key)") { nil }
    }

    func rememberLevelRelation(_ account: String, _ connection: String, _ key: String, _ relation: String?) {
        let name = "\(account):\(connection):\(key)"
        levelRelations.remove(name)
        if let relation { _ = levelRelations.value(name) { relation } }
    }

    var statementTimeoutMs: Int { services.warehouses.statementTimeoutMs }

    func watch(_ request: HTTPRequest) -> PGConnection.Watch {
        PGConnection.Watch(request: request, deadline: .init(timeIntervalSinceNow: Double(statementTimeoutMs) / 1000 + 2))
    }

    /// Runs `body` on a session of the principal's connection `name` (the pool applies mode, limits, reset).
    /// The Maps API and widget models only read, whoever calls them.
    func withWarehouse<T>(_ principal: Principal, _ name: String, request: HTTPRequest, _ body: (PGConnection) throws -> T) throws -> T {
        try services.warehouses.withSession(for: principal, connection: name, request: request, readsOnly: true, body)
    }

    /// Absolute URLs under the public API base, e.g. `https://host/api/v3/maps/...`.
    func url(_ path: String, _ query: [(String, String)]) -> String {
        services.apiBaseURL + path + "?" + query.map { "\($0.0)=\(FormDecoding.encode($0.1))" }.joined(separator: "&")
    }
}

