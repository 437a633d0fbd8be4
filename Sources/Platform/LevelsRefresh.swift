import HTTPKit
import Jobs
import Postgres

/// Asks the sql-worker to rebuild, right after a write, the precomputed low-zoom levels (thinning and aggregation
/// levels, in the warehouse's `carto.tessera_agg_levels` catalogue) whose table's data moved, so the first
/// low-zoom tile after an import, a SQL write or a workflow output is already precomputed instead of live.
/// Queued only through DataChange.record, with the cache purge of the same write. The job (`levels_refresh`, run by
/// MapsAPI's LevelRefreshRunner) only compares versions and queues the builds, whose own unique keys make a burst
/// of writes one build per levels key.
public enum LevelsRefresh {
    public static let queue = "sql"
    public static let kind = "levels_refresh"

    /// Two passes, as cache purges settle: now, and once PostgreSQL has certainly published the writer's table
    /// counters (a backend that stays connected, the pools', flushes them within 10 s of going idle), which the
    /// data version is made of. Each pass is deduplicated while pending.
    static let passes: [(suffix: String, delay: Double)] = [("", 0), (":settled", 11)]

    /// Run inside a writer's transaction on a connection that stays open (pooled): PostgreSQL then publishes its
    /// table counters as the transaction ends instead of up to 10 s later, so the refresh's first pass sees the
    /// new data version. `pg_stat_force_next_flush` is PostgreSQL 15's; older servers get the settled pass only.
    public static let publishCounters = """
        DO $$ BEGIN IF current_setting('server_version_num')::int >= 150000 THEN PERFORM pg_stat_force_next_flush(); END IF; END $$
        """

    /// Queues the refresh of `connection`'s levels (inside the caller's transaction when one is open).
    static func enqueue(account: String, connection name: String, on connection: PGConnection) throws {
        for pass in passes {
            var job = JobQueue.NewJob(queue: queue, kind: kind, payload: ["account": .string(account), "connection": .string(name)],
                                      uniqueKey: "\(kind):\(account):\(name)\(pass.suffix)")
            job.accountId = account
            job.maxAttempts = 3
            job.runAfterSeconds = pass.delay
            try JobQueue.enqueue(job, on: connection)
        }
    }
}
