import HTTPKit

/// `GET /api/v3/lds/isolines?origin=lon,lat&mode=car|walk&range=…&range_type=time|distance` (contract §9).
/// `range` is seconds (time) or metres (distance); several comma-separated ranges give one polygon each.
public struct IsolineRequest: Sendable, Equatable {
    public enum Mode: String, Sendable { case car, walk }
    public enum RangeType: String, Sendable { case time, distance }

    public let origin: Coordinate
    public let mode: Mode
    public let ranges: [Double]
    public let rangeType: RangeType
    /// Provider-specific `options` (a JSON object), passed through.
    public let options: JSON?

    /// Upper bounds that keep one request from walking a continent's graph: 2 h or 200 km.
    public static let maxTime = 7200.0
    public static let maxDistance = 200_000.0

    public init(origin: Coordinate, mode: Mode, ranges: [Double], rangeType: RangeType, options: JSON? = nil) {
        self.origin = origin
        self.mode = mode
        self.ranges = ranges
        self.rangeType = rangeType
        self.options = options
    }

    public init(_ p: Parameters) throws {
        guard let origin = p.string("origin") else { throw APIError.badRequest("Missing required parameter: origin", code: "missing_parameter") }
        self.origin = try Coordinate.parse(origin, parameter: "origin")
        guard let mode = Mode(rawValue: p.string("mode") ?? "car") else {
            throw APIError.badRequest("mode must be car or walk", code: "invalid_parameter")
        }
        self.mode = mode
        guard let rangeType = RangeType(rawValue: p.string("range_type") ?? "time") else {
            throw APIError.badRequest("range_type must be time or distance", code: "invalid_parameter")
        }
        self.rangeType = rangeType
        guard let text = p.string("range"), !text.isEmpty else { throw APIError.badRequest("Missing required parameter: range", code: "missing_parameter") }
        let limit = rangeType == .time ? Self.maxTime : Self.maxDistance
        ranges = try text.split(separator: ",").map { part in
            guard let v = Double(part.trimmingCharacters(in: .whitespaces)), v.isFinite, v > 0, v <= limit else {
                throw APIError.badRequest("range must be greater than 0 and at most \(Int(limit)) \(rangeType == .time ? "seconds" : "metres") (got '\(part.prefix(20))')",
                                          code: "invalid_range")
            }
            return v
        }
        guard !ranges.isEmpty, ranges.count <= 10 else { throw APIError.badRequest("range takes 1 to 10 values", code: "invalid_range") }
        options = try p.json("options")
    }
}
