import Observability

/// The connection-pool series, shared by every pool of a kind (one metadata pool; one warehouse pool per
/// connection, summed).
struct PoolMetrics: Sendable {
    let inUse: Gauge
    let waits: Histogram
    let timeouts: Counter

    init(pool: String) {
        let labels = [("pool", pool)]
        inUse = Metrics.shared.gauge("tessera_db_pool_in_use", "Connections checked out of the pool right now.", labels)
        waits = Metrics.shared.histogram("tessera_db_pool_wait_seconds", "Time checkouts waited because every connection was busy.", labels)
        timeouts = Metrics.shared.counter("tessera_db_pool_timeouts_total", "Checkouts that gave up waiting (answered 503).", labels)
    }

    static let metadata = PoolMetrics(pool: "metadata")
    static let warehouse = PoolMetrics(pool: "warehouse")
}
