import HTTPKit

/// A WGS84 point checked on the way in: latitude within ±90, longitude within ±180.
public struct Coordinate: Sendable, Equatable {
    public let longitude: Double
    public let latitude: Double

    public init(longitude: Double, latitude: Double) throws {
        guard latitude.isFinite, (-90...90).contains(latitude) else {
            throw APIError.badRequest("Latitude must be a number between -90 and 90 (got \(latitude))", code: "invalid_coordinates")
        }
        guard longitude.isFinite, (-180...180).contains(longitude) else {
            throw APIError.badRequest("Longitude must be a number between -180 and 180 (got \(longitude))", code: "invalid_coordinates")
        }
        self.longitude = longitude
        self.latitude = latitude
    }

    /// Parses `"a,b"`; `latFirst` tells the order (CARTO: `origin`/`destination` are lon,lat, `waypoints` lat,lon).
    public static func parse(_ text: String, parameter: String, latFirst: Bool = false) throws -> Coordinate {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let a = Double(parts[0]), let b = Double(parts[1]) else {
            throw APIError.badRequest("\(parameter) must be '\(latFirst ? "lat,lon" : "lon,lat")' (got '\(text.prefix(60))')", code: "invalid_coordinates")
        }
        return latFirst ? try Coordinate(longitude: b, latitude: a) : try Coordinate(longitude: a, latitude: b)
    }

    /// A required numeric parameter such as `lat` or `lon`.
    static func number(_ p: Parameters, _ name: String) throws -> Double {
        guard let text = p.string(name), !text.isEmpty else {
            throw APIError.badRequest("Missing required parameter: \(name)", code: "missing_parameter")
        }
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite else {
            throw APIError.badRequest("\(name) must be a number (got '\(text.prefix(40))')", code: "invalid_coordinates")
        }
        return value
    }
}
