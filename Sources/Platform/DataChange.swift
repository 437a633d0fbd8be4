import HTTPKit
import Jobs
import Postgres

/// The one place that says what follows a write to a connection's warehouse data (design 4a): every writer
/// (an import, a SQL write or batch job, a workflow output, a geocode-table job) calls `record`, and it queues
/// both consequences — the cdn-invalidator's purge of the connection's cached answers and tiles, and the
/// sql-worker's refresh of the connection's precomputed levels (LevelsRefresh). A writer that only did one of
/// the two left stale answers in the http cache until they expired.
public enum DataChange {
    /// `data_changed` `{account, connection, table?}` (see InvalidationRunner): the table, when the writer knows it,
    /// is kept for the record; the purge itself covers the connection, as tile URLs do not name one table.
    static let purgeKind = "data_changed"

    /// Queues the purge and the levels refresh on `connection` (inside the caller's transaction when one is open,
    /// so they commit with the write). The purge repeats on CacheInvalidation's settle delays: an answer read from
    /// the old data by a request still in flight when the first purge ran would otherwise stay cached.
    public static func record(account: String, connection name: String, table: String? = nil, on connection: PGConnection) throws {
        var payload: [String: JSON] = ["account": .string(account), "connection": .string(name)]
        if let table { payload["table"] = .string(table) }
        for delay in CacheInvalidation.settleDelays {
            var job = JobQueue.NewJob(queue: CacheInvalidation.queue, kind: purgeKind, payload: .object(payload))
            job.accountId = account
            job.maxAttempts = 20
            job.runAfterSeconds = delay
            try JobQueue.enqueue(job, on: connection)
        }
        try LevelsRefresh.enqueue(account: account, connection: name, on: connection)
    }

    public static func record(account: String, connection name: String, table: String? = nil, pool: PGPool) throws {
        try pool.transaction { try record(account: account, connection: name, table: table, on: $0) }
    }
}
