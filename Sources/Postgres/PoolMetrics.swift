import Observability

/// The connection-pool series, shared by every pool of a kind (one metadata pool; one warehouse pool per
/// connection, summed).
struct PoolMetrics: Sendable {
    let inUse: Gauge
    let waits: Histogram
    let timeouts: Counter
    /// Round trips per request = requestRoundTrips / checkouts; the reset's are counted apart, as they are
    /// paid after the response.
    let checkouts: Counter
    let requestRoundTrips: Counter
    let resetRoundTrips: Counter
    /// Check-in resets by kind: `read_only` (rollback of the pool's READ ONLY transaction, see
    /// `PGConnection.resetReadOnly`) or `full`; a high `full` share on read paths means the short one is missed.
    let readOnlyResets: Counter
    let fullResets: Counter

    init(pool: String) {
        let labels = [("pool", pool)]
        inUse = Metrics.shared.gauge("tessera_db_pool_in_use", "Connections checked out of the pool right now.", labels)
        waits = Metrics.shared.histogram("tessera_db_pool_wait_seconds", "Time checkouts waited because every connection was busy.", labels)
        checkouts = Metrics.shared.counter("tessera_db_pool_checkouts_total", "Connections handed out by the pool.", labels)
        requestRoundTrips = Metrics.shared.counter("tessera_db_round_trips_total", "Database round trips, on the request's path or in the reset at check-in.", labels + [("phase", "request")])
        resetRoundTrips = Metrics.shared.counter("tessera_db_round_trips_total", "Database round trips, on the request's path or in the reset at check-in.", labels + [("phase", "reset")])
        readOnlyResets = Metrics.shared.counter("tessera_db_pool_resets_total", "Session resets at check-in, by kind.", labels + [("kind", "read_only")])
        fullResets = Metrics.shared.counter("tessera_db_pool_resets_total", "Session resets at check-in, by kind.", labels + [("kind", "full")])
        timeouts = Metrics.shared.counter("tessera_db_pool_timeouts_total", "Checkouts that gave up waiting (answered 503).", labels)
    }

    static let metadata = PoolMetrics(pool: "metadata")
    static let warehouse = PoolMetrics(pool: "warehouse")
}
