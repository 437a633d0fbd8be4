import Foundation
import HTTPKit
import Platform
import Postgres

/// Local routing and isolines: pgRouting over the road graph `tessera lds load-roads` builds in the LDS
/// warehouse (carto_lds.route / carto_lds.isolines in warehouse/050_routing.sql).
extension LocalProvider {
    public func route(_ request: RouteRequest) throws -> JSON {
        let points = [request.origin] + request.waypoints + [request.destination]
        let r = try routingQuery("SELECT geojson, distance_m, duration_s FROM carto_lds.route($1, $2::float8[], $3::float8[])",
                                 [request.mode.rawValue, Self.array(points.map(\.longitude)), Self.array(points.map(\.latitude))])
        guard r.rowCount == 1, let text = r.string(0, 0) else { throw APIError.internalError("The route query returned nothing") }
        return RoutingGeoJSON.route(line: try JSON.decode(text), distance: r.double(0, 1) ?? 0, duration: r.double(0, 2) ?? 0,
                                    mode: request.mode, provider: name)
    }

    public func isoline(_ request: IsolineRequest) throws -> JSON {
        let r = try routingQuery("SELECT geojson FROM carto_lds.isolines($1, $2, $3, $4::float8[], $5)",
                                 [request.mode.rawValue, String(request.origin.longitude), String(request.origin.latitude),
                                  Self.array(request.ranges), request.rangeType.rawValue])
        let polygons = try (0..<r.rowCount).map { try JSON.decode(r.string($0, 0) ?? "null") }
        guard polygons.count == request.ranges.count else { throw APIError.internalError("The isoline query returned \(polygons.count) areas") }
        return RoutingGeoJSON.isolines(polygons, for: request, provider: name)
    }

    static func array(_ values: [Double]) -> String { "{" + values.map { String($0) }.joined(separator: ",") + "}" }

    /// Runs routing SQL; the LD… SQLSTATEs of 050_routing.sql become their own clear 400s.
    func routingQuery(_ sql: String, _ parameters: [String?]) throws -> PGResult {
        guard let pool else {
            throw APIError.badRequest("Local routing needs the connection \(connectionName), which this organisation does not have",
                                      code: "lds_not_configured", hint: "Create the connection or set TESSERA_LDS_CONNECTION")
        }
        do {
            return try pool.withConnection { try $0.execute(sql, parameters, prepare: true) }
        } catch let e as PGError {
            switch e.sqlstate {
            // No graph table, or the routing SQL itself is not installed in this warehouse yet.
            case "LD001", "42P01", "42883", "3F000":
                throw APIError.badRequest("No road graph is loaded for local routing and isolines", code: "road_graph_missing",
                                          hint: "Load an OpenStreetMap extract (.osm XML) with `tessera lds load-roads --osm FILE`")
            case "LD002":
                throw APIError.badRequest(e.message, code: "point_off_road_graph", hint: "Points must lie within 2 km of the loaded road graph")
            case "LD003":
                throw APIError.badRequest(e.message, code: "no_route")
            case "LD004":
                throw APIError.badRequest(e.message, code: "invalid_parameter")
            default:
                throw APIError(e)
            }
        }
    }
}
