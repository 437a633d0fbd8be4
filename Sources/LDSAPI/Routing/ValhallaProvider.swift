import Foundation
import HTTPKit

/// Valhalla (an open protocol): `GET /route?json=…` and `GET /isochrone?json=…`. Routes come back as
/// polyline6 shapes with lengths in kilometres; isochrones as GeoJSON polygons, with contours in minutes
/// or kilometres. Geocoding is not Valhalla's: it stays `Unsupported provider`.
public struct ValhallaProvider: LDSProvider {
    public let name = "valhalla"
    let endpoint: RoutingEndpoint

    public init(baseURL: String, apiKey: String?, timeout: TimeInterval) {
        endpoint = RoutingEndpoint(provider: "valhalla", baseURL: baseURL, apiKey: apiKey, keyParameter: "api_key", timeout: timeout)
    }

    static func costing(_ mode: IsolineRequest.Mode) -> String { mode == .car ? "auto" : "pedestrian" }

    static func location(_ c: Coordinate) -> JSON { .object(["lat": .number(c.latitude), "lon": .number(c.longitude)]) }

    /// Valhalla takes its request as JSON in the `json` query parameter of a GET.
    func get(_ path: String, _ body: JSON) throws -> JSON { try endpoint.get(path, [("json", body.text)]) }

    public func route(_ request: RouteRequest) throws -> JSON {
        let points = [request.origin] + request.waypoints + [request.destination]
        let answer = try get("/route", .object([
            "locations": .array(points.map(Self.location)), "costing": .string(Self.costing(request.mode)),
            "directions_options": .object(["units": .string("kilometers")]),
        ]))
        guard let trip = answer["trip"], let legs = trip["legs"]?.arrayValue, !legs.isEmpty,
              let km = trip["summary"]?["length"]?.doubleValue, let seconds = trip["summary"]?["time"]?.doubleValue else {
            throw LDSErrors.providerFailed(name, "the answer has no trip")
        }
        var coordinates: [JSON] = []
        for leg in legs {
            guard let shape = leg["shape"]?.stringValue, let points = Polyline.decode(shape) else {
                throw LDSErrors.providerFailed(name, "a leg has no valid shape")
            }
            // Consecutive legs share their joining point.
            for p in points.dropFirst(coordinates.isEmpty ? 0 : 1) { coordinates.append(.array(p.map { .number($0) })) }
        }
        let line: JSON = .object(["type": .string("LineString"), "coordinates": .array(coordinates)])
        return RoutingGeoJSON.route(line: line, distance: km * 1000, duration: seconds, mode: request.mode, provider: name)
    }

    public func isoline(_ request: IsolineRequest) throws -> JSON {
        let contours: [JSON] = request.ranges.map {
            request.rangeType == .time ? .object(["time": .number($0 / 60)]) : .object(["distance": .number($0 / 1000)])
        }
        let answer = try get("/isochrone", .object([
            "locations": .array([Self.location(request.origin)]), "costing": .string(Self.costing(request.mode)),
            "contours": .array(contours), "polygons": .bool(true),
        ]))
        guard let features = answer["features"]?.arrayValue else { throw LDSErrors.providerFailed(name, "the answer is not a FeatureCollection") }
        // Valhalla orders contours its own way; match each requested range to the feature of its contour value.
        let metric = request.rangeType == .time ? "time" : "distance"
        let polygons = try request.ranges.map { range -> JSON in
            let value = request.rangeType == .time ? range / 60 : range / 1000
            guard let feature = features.first(where: { f in
                f["properties"]?["contour"]?.doubleValue.map { abs($0 - value) < 1e-6 } ?? false
                    && (f["properties"]?["metric"]?.stringValue ?? metric) == metric
            }) else {
                throw LDSErrors.providerFailed(name, "no contour for range \(range)")
            }
            return try RoutingGeoJSON.geometry(feature["geometry"], types: ["Polygon", "MultiPolygon"], provider: name)
        }
        return RoutingGeoJSON.isolines(polygons, for: request, provider: name)
    }
}
