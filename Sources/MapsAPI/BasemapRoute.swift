import Foundation
import HTTPKit
import Platform
import Postgres
import SQLKit

/// Tessera's offline reference basemap (schema `basemap` in the warehouse, loaded from the
/// tessera-basemap-data package or by `make run`): `GET /api/v3/maps/{connection}/basemap` is its TileJSON,
/// `…/basemap/{z}/{x}/{y}` one multi-layer vector tile (land, water, coast, rivers, boundaries, roads, street_names,
/// countries, places) made by the warehouse function `basemap.tile`. Cached like any tileset: the tiles URL carries
/// the loaded data's version, so a reload changes every URL.
struct BasemapRoute: Sendable {
    let maps: MapsService
    static let layers = ["land", "water", "coast", "rivers", "boundaries", "roads", "street_names", "countries", "places"]
    static let metaSQL: SQL = "SELECT version, attribution FROM basemap.meta WHERE to_regprocedure('basemap.tile(integer,integer,integer)') IS NOT NULL"
    static let tileSQL: SQL = "SELECT basemap.tile($1, $2, $3)"

    func register(_ router: Router) {
        router.get("/api/v3/maps/{connection}/basemap", tileJSON)
        router.get("/api/v3/maps/{connection}/basemap/{z}/{x}/{y}", tile)
    }

    /// Who may draw it: users of the connection, and tokens granted schema `basemap` (every map's own token).
    static func authorize(_ principal: Principal, connection: String) throws {
        switch principal.access(to: connection) {
        case .everything: return
        case .granted(let grants) where grants.contains(where: { $0.allowsTable(schema: "basemap", table: "tile") }): return
        default: throw APIError.forbidden("The token has no grant for the basemap (schema basemap)", code: "source_not_granted")
        }
    }

    func principal(_ request: HTTPRequest) throws -> (Principal, String) {
        let principal = try maps.services.auth.authenticate(request, api: "maps")
        let connection = request.pathParameters["connection"] ?? ""
        try Self.authorize(principal, connection: connection)
        return (principal, connection)
    }

    func tileJSON(_ request: HTTPRequest) throws -> HTTPResponse {
        let (principal, connection) = try principal(request)
        let meta = try maps.withWarehouse(principal, connection, request: request) { db -> (String, String)? in
            let exists = try db.execute("SELECT to_regclass('basemap.meta') IS NOT NULL", watch: maps.watch(request))
            guard exists.bool(0, 0) == true else { return nil }
            let r = try db.execute(Self.metaSQL.text, [], watch: maps.watch(request))
            guard r.rowCount == 1, let version = r.string(0, 0) else { return nil }
            return (version, r.string(0, 1) ?? "")
        }
        guard let (version, attribution) = meta else {
            throw APIError.notFound("This connection has no offline basemap (schema basemap): install tessera-basemap-data", code: "basemap_not_loaded")
        }
        let tiles = maps.url("/v3/maps/\(connection)/basemap/{z}/{x}/{y}", [("v", version)])
        let body: JSON = ["tilejson": "3.0.0", "name": "Tessera offline basemap", "scheme": "xyz",
                          "tiles": [.string(tiles)], "minzoom": 0, "maxzoom": 22, "attribution": .string(attribution),
                          "bounds": [.number(-180), .number(-85.0511), .number(180), .number(85.0511)],
                          "vector_layers": .array(Self.layers.map { ["id": .string($0), "fields": [:]] })]
        return .json(body, headers: CachePolicy.headers(request, principal: principal, maxAge: 300, connection: connection, source: "basemap"))
    }

    func tile(_ request: HTTPRequest) throws -> HTTPResponse {
        let (z, x, y) = try TileRoute.coordinates(request.pathParameters)
        let (principal, connection) = try principal(request)
        let bytes = try maps.withWarehouse(principal, connection, request: request) { db -> [UInt8] in
            let r = try db.execute(Self.tileSQL.text, [String(z), String(x), String(y)], watch: maps.watch(request),
                                   prepare: true, binaryResult: true)
            return r.bytes(0, 0) ?? []
        }
        var headers = CachePolicy.headers(request, principal: principal, maxAge: 31_536_000, connection: connection, source: "basemap")
        if bytes.isEmpty { return .noContent(headers: headers) }
        headers.append(("Content-Type", "application/vnd.mapbox-vector-tile"))
        return HTTPResponse(status: 200, headers: headers, body: .bytes(bytes))
    }
}
