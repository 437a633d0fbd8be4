import Foundation
import HTTPKit

/// OSRM (Open Source Routing Machine, an open protocol): `GET /route/v1/{profile}/{lon,lat;…}` with
/// GeoJSON geometry. OSRM has no isochrones: isolines stay `Unsupported provider`, as does geocoding.
public struct OSRMProvider: LDSProvider {
    public let name = "osrm"
    let endpoint: RoutingEndpoint

    public init(baseURL: String, apiKey: String?, timeout: TimeInterval) {
        endpoint = RoutingEndpoint(provider: "osrm", baseURL: baseURL, apiKey: apiKey, keyParameter: "key", timeout: timeout)
    }

    /// OSRM's conventional profile names (a server answers for the profile it was built with).
    static func profile(_ mode: IsolineRequest.Mode) -> String { mode == .car ? "driving" : "foot" }

    public func route(_ request: RouteRequest) throws -> JSON {
        let points = ([request.origin] + request.waypoints + [request.destination])
            .map { "\($0.longitude),\($0.latitude)" }.joined(separator: ";")
        let answer = try endpoint.get("/route/v1/\(Self.profile(request.mode))/\(points)", [
            ("overview", "full"), ("geometries", "geojson"), ("steps", "false"),
        ])
        guard answer["code"]?.stringValue == "Ok", let best = answer["routes"]?.arrayValue?.first else {
            throw LDSErrors.providerFailed(name, "no route (\(answer["code"]?.stringValue ?? "no code"))")
        }
        guard let distance = best["distance"]?.doubleValue, let duration = best["duration"]?.doubleValue else {
            throw LDSErrors.providerFailed(name, "the route has no distance/duration")
        }
        let line = try RoutingGeoJSON.geometry(best["geometry"], types: ["LineString"], provider: name)
        return RoutingGeoJSON.route(line: line, distance: distance, duration: duration, mode: request.mode, provider: name)
    }
}
