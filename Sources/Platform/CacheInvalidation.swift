import HTTPKit
import Jobs
import Postgres

/// Asks the cdn-invalidator to purge http-cache entries by surrogate key (`cred:…`, `conn:…`, `src:…`).
/// The request is a job in the `cdn` queue, so it survives restarts and is retried until Varnish took it.
/// Revocations and edits of tokens, users, sessions, OAuth clients and connections are queued by
/// database triggers (migration 004), with the same repeats; data writes go through DataChange.record.
public enum CacheInvalidation {
    public static let queue = "cdn"

    /// Queues the purge on `connection` (inside the caller's transaction when one is open). Purges repeat
    /// while an API process may still accept a revoked credential from its caches (in-process memo 1 s;
    /// Redis 3 s when a delete could not reach it), since Varnish could store such an answer again.
    public static func purge(keys: [String], account: String?, on connection: PGConnection) throws {
        for delay in settleDelays {
            var job = JobQueue.NewJob(queue: queue, kind: "purge", payload: ["keys": .array(keys.map { .string($0) })])
            job.accountId = account
            job.maxAttempts = 20
            job.runAfterSeconds = delay
            try JobQueue.enqueue(job, on: connection)
        }
    }

    /// The same as `tessera_purge_cache` in migration 004.
    static let settleDelays: [Double] = [0, 1.5, 4.2]

    public static func purge(keys: [String], account: String?, pool: PGPool) throws {
        try pool.withConnection { try purge(keys: keys, account: account, on: $0) }
    }

    public static func credential(_ key: String) -> String { "cred:" + key }
    public static func connection(account: String, name: String) -> String {
        "conn:" + CachePolicy.connectionKey(account: account, connection: name)
    }
}
