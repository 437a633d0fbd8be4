/// The LDS providers and quotas, for geocode, isolines and route nodes. They live in the LDS API's module
/// (which depends on this one), so the sql-worker hands the runner an implementation. Every call charges
/// the organisation's quota for the whole batch first; an exhausted quota is an `APIError` 429 the runner
/// reports as the node's error.
public protocol WorkflowLocationServices: Sendable {
    /// One answer per query, in order; nil where nothing matched.
    func geocode(account: String, _ queries: [WorkflowGeocodeQuery]) throws -> [WorkflowPlace?]
    /// GeoJSON geometry (text) of the area reachable from each origin, in order.
    func isolines(account: String, _ requests: [WorkflowIsolineQuery]) throws -> [String]
    /// One route per request, in order.
    func routes(account: String, _ requests: [WorkflowRouteQuery]) throws -> [WorkflowRoute]
}

public struct WorkflowGeocodeQuery: Sendable, Equatable {
    public let address: String
    public let country: String?
}

public struct WorkflowPlace: Sendable, Equatable {
    public let longitude: Double
    public let latitude: Double
    public let relevance: Double?
    public init(longitude: Double, latitude: Double, relevance: Double?) {
        self.longitude = longitude
        self.latitude = latitude
        self.relevance = relevance
    }
}

public struct WorkflowIsolineQuery: Sendable, Equatable {
    public let longitude: Double
    public let latitude: Double
    /// car or walk
    public let mode: String
    public let seconds: Double
}

public struct WorkflowRouteQuery: Sendable, Equatable {
    public let origin: (longitude: Double, latitude: Double)
    public let destination: (longitude: Double, latitude: Double)
    public let mode: String
    public static func == (a: Self, b: Self) -> Bool {
        a.origin == b.origin && a.destination == b.destination && a.mode == b.mode
    }
}

public struct WorkflowRoute: Sendable, Equatable {
    /// GeoJSON LineString (text).
    public let geometry: String
    public let distance: Double
    public let duration: Double
    public init(geometry: String, distance: Double, duration: Double) {
        self.geometry = geometry
        self.distance = distance
        self.duration = duration
    }
}
