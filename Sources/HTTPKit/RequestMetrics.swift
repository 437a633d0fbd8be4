import Observability
import Synchronization

/// Request counts and latency per route, method and status. Each (route, status) slot resolves its histogram
/// once; later requests only load a reference and do atomic adds, so no lock is taken per request.
public final class RequestMetrics: Sendable {
    /// Statuses the APIs answer with; any other lands in the last slot and is labelled by its own value there.
    static let statuses = [200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 406, 409, 410, 411, 413, 415,
                           422, 429, 499, 500, 501, 502, 503, 504]
    final class Slot: Sendable {
        let latency = AtomicLazyReference<Histogram>()
        let bytes = AtomicLazyReference<Histogram>()
    }

    private let registry: Metrics
    private let routes: [String]
    private let slots: [[Slot]]

    public init(routes: [String], registry: Metrics = .shared) {
        self.registry = registry
        self.routes = routes
        // One extra row for requests no route matched.
        self.slots = (0...routes.count).map { _ in (0...Self.statuses.count).map { _ in Slot() } }
    }

    public func observe(route: Int?, status: Int, seconds: Double, bytes: Int) {
        let row = route.map { $0 < routes.count ? $0 : routes.count } ?? routes.count
        let column = Self.statuses.firstIndex(of: status) ?? Self.statuses.count
        let label = row < routes.count ? routes[row] : "unmatched"
        guard column < Self.statuses.count else {
            // Rare statuses: looked up by label (a lock) rather than sharing one slot under a wrong label.
            registry.histogram("tessera_http_request_duration_seconds", "Time from request accepted to response flushed.",
                               [("route", label), ("status", String(status))]).observe(seconds)
            registry.histogram("tessera_http_response_size_bytes", "Response body bytes written.",
                               [("route", label), ("status", String(status))], buckets: Metrics.sizeBuckets).observe(Double(bytes))
            return
        }
        let slot = slots[row][column]
        let latency = slot.latency.load() ?? slot.latency.storeIfNil(
            registry.histogram("tessera_http_request_duration_seconds", "Time from request accepted to response flushed.",
                               [("route", label), ("status", String(status))]))
        latency.observe(seconds)
        let size = slot.bytes.load() ?? slot.bytes.storeIfNil(
            registry.histogram("tessera_http_response_size_bytes", "Response body bytes written.",
                               [("route", label), ("status", String(status))], buckets: Metrics.sizeBuckets))
        size.observe(Double(bytes))
    }
}
