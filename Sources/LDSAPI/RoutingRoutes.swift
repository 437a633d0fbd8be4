import Foundation
import HTTPKit
import Platform

/// `GET /api/v3/lds/isolines` and `GET /api/v3/lds/routing`: parameters are checked here, the work is
/// the organisation's provider's (local pgRouting, OSRM or Valhalla), metered per request.
struct RoutingRoutes: Sendable {
    let lds: LDSContext

    func register(_ router: Router) {
        router.get("/api/v3/lds/isolines", isolines)
        router.get("/api/v3/lds/routing", routing)
    }

    func isolines(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try lds.authenticate(request)
        let isoline = try IsolineRequest(try lds.parameters(request))
        let body = try lds.metered(principal, .isolines, units: 1) { try $0.isoline(isoline) }
        return .json(body, headers: [("Cache-Control", "no-store")])
    }

    func routing(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try lds.authenticate(request)
        let route = try RouteRequest(try lds.parameters(request))
        let body = try lds.metered(principal, .routing, units: 1) { try $0.route(route) }
        return .json(body, headers: [("Cache-Control", "no-store")])
    }
}
