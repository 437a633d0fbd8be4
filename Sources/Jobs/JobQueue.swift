import Foundation
import HTTPKit
import Observability
import Postgres
import SQLKit

/// The PostgreSQL job queue. Enqueue can join the caller's transaction; claiming uses
/// `FOR UPDATE SKIP LOCKED` and a lease with a token; completion and failure are fenced by that token,
/// so a worker whose job was rescued cannot finish it a second time.
public struct JobQueue: Sendable {
    public let pool: PGPool
    /// First retry delay in seconds; each further attempt doubles it (with ±20% jitter), capped at an hour.
    public var retryBaseSeconds: Double = 2

    public init(pool: PGPool, retryBaseSeconds: Double = 2) {
        self.pool = pool
        self.retryBaseSeconds = retryBaseSeconds
    }

    public static func channel(_ queue: String) -> String { "tessera_jobs_" + queue }

    public struct NewJob: Sendable {
        public var queue: String
        public var kind: String
        public var payload: JSON
        public var uniqueKey: String?
        public var maxAttempts = 5
        public var accountId: String?
        public var createdBy: String?
        public var runAfterSeconds: Double = 0
        /// Only workers of this node may claim the job (its input is on that node's disk); nil = any.
        /// Rescues and retries keep it.
        public var node: String?

        public init(queue: String, kind: String, payload: JSON = .object([:]), uniqueKey: String? = nil) {
            self.queue = queue
            self.kind = kind
            self.payload = payload
            self.uniqueKey = uniqueKey
        }
    }

    /// Inserts a job on `connection` (inside the caller's transaction when one is open) and notifies the
    /// queue's channel with the id only; the notification is delivered at commit. Returns nil when a
    /// non-final job with the same unique key exists.
    @discardableResult
    public static func enqueue(_ job: NewJob, on connection: PGConnection) throws -> Int64? {
        let r = try connection.execute("""
            INSERT INTO jobs (queue, kind, payload, unique_key, max_attempts, account_id, created_by, run_at, node)
            VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, now() + make_interval(secs => $8), $9)
            ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL AND state IN ('available', 'running', 'retryable')
            DO NOTHING RETURNING id
            """, [job.queue, job.kind, job.payload.text, job.uniqueKey, String(job.maxAttempts), job.accountId, job.createdBy,
                  String(job.runAfterSeconds), job.node], prepare: true)
        guard r.rowCount == 1, let id = r.string(0, 0).flatMap(Int64.init) else { return nil }
        if job.runAfterSeconds <= 0 {
            try connection.execute("SELECT pg_notify($1, $2)", [channel(job.queue), String(id)], prepare: true)
        }
        return id
    }

    @discardableResult
    public func enqueue(_ job: NewJob) throws -> Int64? {
        try pool.withConnection { try JobQueue.enqueue(job, on: $0) }
    }

    /// Leases up to `limit` ready jobs of a queue for `leaseSeconds`: jobs pinned to no node, or to `node`,
    /// of any kind but those in `excludingKinds`.
    public func claim(queue: String, worker: String, leaseSeconds: Int, limit: Int = 1, node: String? = nil,
                      excludingKinds: [String] = []) throws -> [Job] {
        try pool.withConnection { db in
            let r = try db.execute("""
                UPDATE jobs j SET state = 'running', attempt = j.attempt + 1, locked_by = $2, lease_token = gen_random_uuid(),
                       lease_until = now() + make_interval(secs => $3), started_at = coalesce(j.started_at, now())
                FROM (SELECT id AS ready_id FROM jobs WHERE queue = $1 AND state IN ('available', 'retryable') AND run_at <= now()
                        AND (node IS NULL OR node = $5) AND kind <> ALL ($6::text[])
                      ORDER BY run_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) ready
                WHERE j.id = ready.ready_id
                RETURNING \(Job.columns)
                """, [queue, worker, String(leaseSeconds), String(limit), node, arrayLiteral(excludingKinds)], prepare: true)
            return (0..<r.rowCount).map { Job(r, $0) }
        }
    }

    /// Extends a lease. False when the lease was lost (rescued elsewhere) or the job was cancelled:
    /// the worker must stop working on it.
    public func heartbeat(_ job: Job, leaseSeconds: Int, progress: JSON? = nil) throws -> Bool {
        try pool.withConnection { db in
            let r = try db.execute("""
                UPDATE jobs SET lease_until = now() + make_interval(secs => $3), progress = coalesce($4::jsonb, progress)
                WHERE id = $1 AND lease_token = $2::uuid AND state = 'running' RETURNING cancel_requested
                """, [String(job.id), job.leaseToken, String(leaseSeconds), progress?.text], prepare: true)
            return r.rowCount == 1 && r.bool(0, 0) == false
        }
    }

    /// Marks a job completed on `connection` — pass the connection of the job's own database side effect
    /// so both commit together. False (nothing changed) when the lease is no longer this worker's.
    public static func complete(_ job: Job, result: JSON?, on db: PGConnection) throws -> Bool {
        try db.execute("""
            UPDATE jobs SET state = 'completed', result = $3::jsonb, finished_at = now(), lease_token = NULL, lease_until = NULL,
                   locked_by = NULL
            WHERE id = $1 AND lease_token = $2::uuid AND state = 'running'
            """, [String(job.id), job.leaseToken, result?.text], prepare: true).affectedRows == 1
    }

    public func complete(_ job: Job, result: JSON? = nil) throws -> Bool {
        try pool.withConnection { try JobQueue.complete(job, result: result, on: $0) }
    }

    /// Records a failure: retryable with exponential backoff, or discarded once attempts are used up
    /// (or at once when `permanent`). The error stays visible in `errors`.
    @discardableResult
    public func fail(_ job: Job, error: String, permanent: Bool = false) throws -> String? {
        try pool.withConnection { db in
            let r = try db.execute("""
                UPDATE jobs SET
                  state = CASE WHEN $4 OR attempt >= max_attempts THEN 'discarded' ELSE 'retryable' END,
                  finished_at = CASE WHEN $4 OR attempt >= max_attempts THEN now() END,
                  run_at = now() + make_interval(secs => least(3600, $5::float8 * power(2, greatest(attempt - 1, 0)))
                                                         * (0.8 + random() * 0.4)),
                  errors = errors || jsonb_build_array(jsonb_build_object('attempt', attempt, 'at', now(), 'error', $3::text)),
                  lease_token = NULL, lease_until = NULL, locked_by = NULL
                WHERE id = $1 AND lease_token = $2::uuid AND state = 'running' RETURNING state
                """, [String(job.id), job.leaseToken, String(error.prefix(4000)), permanent ? "true" : "false", String(retryBaseSeconds)],
                prepare: true)
            return r.string(0, 0)
        }
    }

    /// Gives a job back without counting the attempt (graceful shutdown): runnable again at once.
    public func release(_ job: Job) throws {
        try pool.withConnection { db in
            _ = try db.execute("""
                UPDATE jobs SET state = 'available', attempt = greatest(attempt - 1, 0), run_at = now(), lease_token = NULL,
                       lease_until = NULL, locked_by = NULL
                WHERE id = $1 AND lease_token = $2::uuid AND state = 'running'
                """, [String(job.id), job.leaseToken], prepare: true)
            _ = try db.execute("SELECT pg_notify($1, $2)", [JobQueue.channel(job.queue), String(job.id)])
        }
    }

    /// Marks a cancelled running job final once its worker has stopped.
    public func acknowledgeCancel(_ job: Job) throws {
        try pool.withConnection { db in
            _ = try db.execute("""
                UPDATE jobs SET state = 'cancelled', finished_at = now(), lease_token = NULL, lease_until = NULL, locked_by = NULL
                WHERE id = $1 AND lease_token = $2::uuid AND state = 'running'
                """, [String(job.id), job.leaseToken])
        }
    }

    /// What rescuing a running job whose worker is gone does: retryable at once (the attempt counts),
    /// cancelled when that was asked, discarded when out of attempts; `reason` (SQL text) is recorded.
    private static func rescueAssignments(reason: String) -> String {
        """
        state = CASE WHEN cancel_requested THEN 'cancelled' WHEN attempt >= max_attempts THEN 'discarded' ELSE 'retryable' END,
        finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN now() END,
        run_at = now(),
        errors = errors || jsonb_build_array(jsonb_build_object('attempt', attempt, 'at', now(), 'error', \(reason))),
        lease_token = NULL, lease_until = NULL, locked_by = NULL
        """
    }

    /// Jobs whose lease expired (their worker died or was cut off) become retryable, or discarded when
    /// out of attempts. Returns how many were rescued.
    @discardableResult
    public func rescueExpired() throws -> Int {
        try pool.withConnection { db in
            try db.execute("""
                UPDATE jobs SET \(JobQueue.rescueAssignments(reason: "'lease expired: worker ' || coalesce(locked_by, '?') || ' stopped responding'"))
                WHERE state = 'running' AND lease_until < now()
                """).affectedRows ?? 0
        }
    }

    /// Running jobs of `queue` held by a process of this machine that no longer exists (a predecessor
    /// killed or crashed) are rescued now rather than when their lease expires. Called by a worker at
    /// start, before it claims anything; jobs of live siblings (and of other machines) are left alone.
    /// Returns the ids rescued.
    @discardableResult
    public func reclaimDead(queue: String, me: WorkerIdentity) throws -> [Int64] {
        try pool.withConnection { db in
            let r = try db.execute("""
                SELECT id, locked_by FROM jobs WHERE queue = $1 AND state = 'running' AND starts_with(locked_by, $2)
                """, [queue, me.machine + ":"])
            var rescued: [Int64] = []
            for i in 0..<r.rowCount {
                guard let id = r.string(i, 0).flatMap(Int64.init), let holder = r.string(i, 1),
                      let identity = WorkerIdentity(parsing: holder), identity.isGone(seenFrom: me) else { continue }
                // Fenced by locked_by: a job claimed again meanwhile is not touched.
                let done = try db.execute("""
                    UPDATE jobs SET \(JobQueue.rescueAssignments(reason: "'worker ' || locked_by || ' died; reclaimed by its successor at start'"))
                    WHERE id = $1 AND state = 'running' AND locked_by = $2
                    """, [String(id), holder]).affectedRows ?? 0
                if done == 1 { rescued.append(id) }
            }
            return rescued
        }
    }

    /// Cancels a job: at once when not running, otherwise by flagging it for its worker (which sees the
    /// flag at its next heartbeat). Returns the job's state afterwards, nil when unknown.
    public func cancel(id: Int64, account: String? = nil) throws -> String? {
        try pool.withConnection { db in
            let r = try db.execute("""
                UPDATE jobs SET cancel_requested = true,
                  state = CASE WHEN state IN ('available', 'retryable') THEN 'cancelled' ELSE state END,
                  finished_at = CASE WHEN state IN ('available', 'retryable') THEN now() ELSE finished_at END
                WHERE id = $1 AND ($2::uuid IS NULL OR account_id = $2::uuid) RETURNING state
                """, [String(id), account])
            return r.string(0, 0)
        }
    }

    /// Cancels every unfinished job `createdBy` created in `account` (their user is gone), on `db`
    /// so it joins the caller's transaction: queued ones at once, running ones through their worker's
    /// next heartbeat. `except` spares one job (the caller's own). Returns how many were touched.
    @discardableResult
    public static func cancel(createdBy user: String, account: String, except: Int64? = nil, on db: PGConnection) throws -> Int {
        try db.execute("""
            UPDATE jobs SET cancel_requested = true,
              state = CASE WHEN state IN ('available', 'retryable') THEN 'cancelled' ELSE state END,
              finished_at = CASE WHEN state IN ('available', 'retryable') THEN now() ELSE finished_at END
            WHERE created_by = $1::uuid AND account_id = $2::uuid AND state IN ('available', 'running', 'retryable')
              AND NOT cancel_requested AND id IS DISTINCT FROM $3::bigint
            """, [user, account, except.map { String($0) }]).affectedRows ?? 0
    }

    /// Puts a final (or retryable) job back in the queue with fresh attempts.
    public func retry(id: Int64) throws -> Bool {
        try pool.withConnection { db in
            let r = try db.execute("""
                UPDATE jobs SET state = 'available', attempt = 0, run_at = now(), cancel_requested = false, finished_at = NULL
                WHERE id = $1 AND state IN ('completed', 'discarded', 'cancelled', 'retryable') RETURNING queue
                """, [String(id)])
            if let queue = r.string(0, 0) { _ = try db.execute("SELECT pg_notify($1, $2)", [JobQueue.channel(queue), String(id)]) }
            return r.rowCount == 1
        }
    }

    /// Deletes completed and cancelled jobs older than `completedHours` and discarded ones older than
    /// `discardedDays` (kept longer: their errors explain what went wrong).
    @discardableResult
    public func prune(completedHours: Double = 24, discardedDays: Double = 7) throws -> Int {
        try pool.withConnection { db in
            try db.execute("""
                DELETE FROM jobs WHERE (state IN ('completed', 'cancelled') AND finished_at < now() - make_interval(secs => $1))
                                    OR (state = 'discarded' AND finished_at < now() - make_interval(secs => $2))
                """, [String(completedHours * 3600), String(discardedDays * 86400)]).affectedRows ?? 0
        }
    }

    /// Jobs waiting per queue (available or retryable, due or not) and the age of the oldest due one.
    public func depth() throws -> [(queue: String, waiting: Int, oldestSeconds: Double)] {
        try pool.withConnection { db in
            let r = try db.execute("""
                SELECT queue, count(*), coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now())), 0)
                FROM jobs WHERE state IN ('available', 'retryable') GROUP BY queue
                """)
            return (0..<r.rowCount).map { (r.string($0, 0) ?? "", r.int($0, 1) ?? 0, r.double($0, 2) ?? 0) }
        }
    }

    public func find(id: Int64) throws -> Job? {
        try pool.withConnection { db in
            let r = try db.execute("SELECT \(Job.columns) FROM jobs WHERE id = $1", [String(id)])
            return r.rowCount == 1 ? Job(r, 0) : nil
        }
    }

    /// A job as an API shows it to its account: `id` as it appears in the URL, of `queue` and `kind`, owned
    /// by `account`. Nil for a malformed id, another queue, kind or account alike (all answer 404, so
    /// nobody learns which ids exist elsewhere).
    public func find(id: String?, queue: String, kind: String, account: String) throws -> Job? {
        guard let id = id.flatMap(Int64.init), id > 0 else { return nil }
        return try pool.withConnection { db in
            let r = try db.execute("SELECT \(Job.columns) FROM jobs WHERE id = $1 AND queue = $2 AND kind = $3 AND account_id = $4::uuid",
                                   [String(id), queue, kind, account], prepare: true)
            return r.rowCount == 1 ? Job(r, 0) : nil
        }
    }

    public func list(queue: String? = nil, state: String? = nil, account: String? = nil, limit: Int = 100) throws -> [Job] {
        try pool.withConnection { db in
            let r = try db.execute("""
                SELECT \(Job.columns) FROM jobs
                WHERE ($1::text IS NULL OR queue = $1) AND ($2::text IS NULL OR state = $2) AND ($3::uuid IS NULL OR account_id = $3::uuid)
                ORDER BY id DESC LIMIT $4
                """, [queue, state, account, String(limit)])
            return (0..<r.rowCount).map { Job(r, $0) }
        }
    }
}
