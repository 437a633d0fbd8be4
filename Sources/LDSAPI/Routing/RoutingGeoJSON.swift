import HTTPKit

/// The response shapes every provider answers with, so clients see one format whichever provider serves:
/// a route is a GeoJSON Feature (LineString) with `distance` (m) and `duration` (s); isolines are a
/// FeatureCollection with one Polygon/MultiPolygon Feature per requested range, in request order.
enum RoutingGeoJSON {
    static func route(line: JSON, distance: Double, duration: Double, mode: IsolineRequest.Mode, provider: String) -> JSON {
        .object([
            "type": .string("Feature"),
            "geometry": line,
            "properties": .object([
                "distance": .number((distance * 10).rounded() / 10), "duration": .number((duration * 10).rounded() / 10),
                "mode": .string(mode.rawValue), "provider": .string(provider),
            ]),
        ])
    }

    static func isolines(_ polygons: [JSON], for request: IsolineRequest, provider: String) -> JSON {
        let features: [JSON] = zip(request.ranges, polygons).map { range, polygon in
            .object([
                "type": .string("Feature"),
                "geometry": polygon,
                "properties": .object([
                    "range": .number(range), "range_type": .string(request.rangeType.rawValue),
                    "mode": .string(request.mode.rawValue), "provider": .string(provider),
                ]),
            ])
        }
        return .object(["type": .string("FeatureCollection"), "features": .array(features)])
    }

    /// A GeoJSON geometry of the given types, or a 502 naming the provider that sent something else.
    static func geometry(_ value: JSON?, types: Set<String>, provider: String) throws -> JSON {
        guard let value, let type = value["type"]?.stringValue, types.contains(type), value["coordinates"]?.arrayValue != nil else {
            throw LDSErrors.providerFailed(provider, "the answer has no \(types.sorted().joined(separator: "/")) geometry")
        }
        return value
    }
}
