import HTTPKit

/// `GET /api/v3/lds/routing?origin=lon,lat&destination=lon,lat&waypoints=lat,lon|lat,lon&mode=car|walk` (contract §9).
public struct RouteRequest: Sendable, Equatable {
    public let origin: Coordinate
    public let destination: Coordinate
    /// Intermediate stops in order (given as `lat,lon` pairs separated by `|`, CARTO's order for waypoints).
    public let waypoints: [Coordinate]
    public let mode: IsolineRequest.Mode
    public let options: JSON?

    public init(origin: Coordinate, destination: Coordinate, waypoints: [Coordinate] = [], mode: IsolineRequest.Mode = .car, options: JSON? = nil) {
        self.origin = origin
        self.destination = destination
        self.waypoints = waypoints
        self.mode = mode
        self.options = options
    }

    public init(_ p: Parameters) throws {
        func required(_ name: String) throws -> Coordinate {
            guard let text = p.string(name) else { throw APIError.badRequest("Missing required parameter: \(name)", code: "missing_parameter") }
            return try Coordinate.parse(text, parameter: name)
        }
        origin = try required("origin")
        destination = try required("destination")
        waypoints = try (p.string("waypoints") ?? "").split(separator: "|").filter { !$0.isEmpty }
            .map { try Coordinate.parse(String($0), parameter: "waypoints", latFirst: true) }
        guard waypoints.count <= 25 else { throw APIError.badRequest("At most 25 waypoints", code: "invalid_parameter") }
        guard let mode = IsolineRequest.Mode(rawValue: p.string("mode") ?? "car") else {
            throw APIError.badRequest("mode must be car or walk", code: "invalid_parameter")
        }
        self.mode = mode
        options = try p.json("options")
    }
}
