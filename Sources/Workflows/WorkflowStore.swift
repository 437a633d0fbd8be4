import CryptoSupport
import Foundation
import HTTPKit
import Jobs
import Platform
import Postgres

/// A workflow as stored in the metadata database.
public struct WorkflowRecord: Sendable {
    public let id: String
    public let accountId: String
    public let ownerId: String?
    public let name: String
    public let connection: String
    public let privacy: String
    public let document: JSON
    public let schedule: String?
    public let nextRunAt: String?
    public let createdAt: String
    public let updatedAt: String
    public var lastRun: JSON = .null

    var privacyLevel: Principal.MapPrivacy { Principal.MapPrivacy(rawValue: privacy) ?? .private }

    /// The warehouse schema holding this workflow's node results.
    public var schema: String { WorkflowStore.schema(for: id) }

    public var json: JSON {
        ["id": .string(id), "name": .string(name), "connection": .string(connection), "privacy": .string(privacy),
         "owner": .optional(ownerId), "nodes": document["nodes"] ?? .array([]), "edges": document["edges"] ?? .array([]),
         "variables": document["variables"] ?? .array([]), "schedule": .optional(schedule), "nextRunAt": .optional(nextRunAt),
         "schema": .string(schema), "createdAt": .string(createdAt), "updatedAt": .string(updatedAt), "lastRun": lastRun]
    }
}

/// Workflows and their runs in the metadata database.
public struct WorkflowStore: Sendable {
    public let pool: PGPool
    public init(pool: PGPool) { self.pool = pool }

    public static let queue = "sql"
    public static let runKind = "workflow_run"
    public static let dropKind = "workflow_drop"

    public static func schema(for id: String) -> String { "tessera_wf_" + id.lowercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined() }

    static let ts = #"'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'"#
    static let columns = """
        id, account_id, owner_id, name, connection, privacy, document::text, schedule,
        to_char(next_run_at AT TIME ZONE 'UTC', \(ts)), to_char(created_at AT TIME ZONE 'UTC', \(ts)),
        to_char(updated_at AT TIME ZONE 'UTC', \(ts))
        """

    func record(_ r: PGResult, _ i: Int) -> WorkflowRecord {
        WorkflowRecord(id: r.string(i, 0)!, accountId: r.string(i, 1)!, ownerId: r.string(i, 2), name: r.string(i, 3)!,
                       connection: r.string(i, 4)!, privacy: r.string(i, 5)!,
                       document: r.string(i, 6).flatMap { try? JSON.decode($0) } ?? .object([:]), schedule: r.string(i, 7),
                       nextRunAt: r.string(i, 8), createdAt: r.string(i, 9)!, updatedAt: r.string(i, 10)!)
    }

    public func list(account: String) throws -> [WorkflowRecord] {
        try pool.withConnection { db in
            let r = try db.execute("SELECT \(Self.columns) FROM workflows WHERE account_id = $1 ORDER BY updated_at DESC, id", [account])
            return try (0..<r.rowCount).map { i in
                var w = record(r, i)
                w.lastRun = try Self.lastRun(of: w.id, on: db)
                return w
            }
        }
    }

    public func find(id: String, account: String?) throws -> WorkflowRecord? {
        guard id.range(of: "^[A-Za-z0-9_-]{6,64}$", options: .regularExpression) != nil else { return nil }
        return try pool.withConnection { db in
            let r = try db.execute("SELECT \(Self.columns) FROM workflows WHERE id = $1 AND ($2::uuid IS NULL OR account_id = $2::uuid)",
                                   [id, account])
            guard r.rowCount == 1 else { return nil }
            var w = record(r, 0)
            w.lastRun = try Self.lastRun(of: id, on: db)
            return w
        }
    }

    /// The latest finished run (and the latest error) of a workflow, null when none finished yet.
    static func lastRun(of id: String, on db: PGConnection) throws -> JSON {
        let last = try db.execute("""
            SELECT id, status, error, to_char(finished_at AT TIME ZONE 'UTC', \(Self.ts)) FROM workflow_runs
            WHERE workflow_id = $1 AND status IN ('success', 'failure', 'cancelled') ORDER BY id DESC LIMIT 1
            """, [id])
        guard last.rowCount == 1 else { return .null }
        let lastError = try db.execute("SELECT error FROM workflow_runs WHERE workflow_id = $1 AND status = 'failure' ORDER BY id DESC LIMIT 1", [id])
        return ["id": .string(last.string(0, 0)!), "status": .string(last.string(0, 1)!), "error": .optional(last.string(0, 2)),
                "finishedAt": .optional(last.string(0, 3)), "lastError": .optional(lastError.string(0, 0))]
    }

    /// Runs whose job the queue ended without the runner — discarded by the lease-expiry rescue after its
    /// last attempt (the worker died each time), or cancelled there — would otherwise stay "running"
    /// forever: they end as failure (naming the node that was running and the queue's reason) or cancelled.
    @discardableResult
    public static func settleAbandonedRuns(on db: PGConnection) throws -> Int {
        try db.execute("""
            UPDATE workflow_runs r SET
              status = CASE WHEN j.state = 'cancelled' THEN 'cancelled' ELSE 'failure' END,
              error = CASE WHEN j.state = 'cancelled' THEN r.error ELSE coalesce(
                (SELECT 'node ' || n.key || ': ' FROM jsonb_each(r.nodes) n WHERE n.value->>'status' = 'running' LIMIT 1), '')
                || 'the run was abandoned after its last attempt (' || coalesce((j.errors -> -1) ->> 'error', 'job ' || j.state) || ')' END,
              nodes = (SELECT coalesce(jsonb_object_agg(n.key, CASE WHEN n.value->>'status' = 'running'
                         THEN n.value || jsonb_build_object('status', 'failure', 'error', coalesce((j.errors -> -1) ->> 'error', 'abandoned'))
                         ELSE n.value END), '{}'::jsonb) FROM jsonb_each(r.nodes) n),
              finished_at = coalesce(r.finished_at, now())
            FROM jobs j WHERE j.id = r.job_id AND r.status IN ('pending', 'running') AND j.state IN ('discarded', 'cancelled')
            """).affectedRows ?? 0
    }

    public func create(account: String, owner: String, name: String, connection: String, privacy: String, document: JSON,
                       schedule: Cron?) throws -> WorkflowRecord {
        let id = Encoding.randomToken(bytes: 8)
        try pool.withConnection { db in
            _ = try db.execute("""
                INSERT INTO workflows (id, account_id, owner_id, name, connection, privacy, document, schedule, next_run_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9::timestamptz)
                """, [id, account, owner, name, connection, privacy, document.text, schedule?.text, Self.next(schedule)])
        }
        return try find(id: id, account: account)!
    }

    /// The next due time as text PostgreSQL reads (epoch seconds through to_timestamp would need SQL; ISO is plain).
    static func next(_ schedule: Cron?, after date: Date = Date()) -> String? {
        guard let t = schedule?.next(after: date) else { return nil }
        let c = Cron.utc.dateComponents([.year, .month, .day, .hour, .minute], from: t)
        return String(format: "%04d-%02d-%02dT%02d:%02d:00Z", c.year!, c.month!, c.day!, c.hour!, c.minute!)
    }

    public struct Changes: Sendable {
        public var name: String?
        public var privacy: String?
        public var document: JSON?
        /// nil = unchanged; .some(nil) = remove the schedule.
        public var schedule: Cron??
        public init() {}
    }

    public func update(_ w: WorkflowRecord, _ c: Changes) throws -> WorkflowRecord {
        let scheduleChanged = c.schedule != nil
        let schedule: Cron? = c.schedule ?? nil
        try pool.withConnection { db in
            _ = try db.execute("""
                UPDATE workflows SET name = coalesce($3, name), privacy = coalesce($4, privacy), document = coalesce($5::jsonb, document),
                       schedule = CASE WHEN $6 THEN $7 ELSE schedule END,
                       next_run_at = CASE WHEN $6 THEN $8::timestamptz ELSE next_run_at END, updated_at = clock_timestamp()
                WHERE id = $1 AND account_id = $2
                """, [w.id, w.accountId, c.name, c.privacy, c.document?.text, scheduleChanged ? "true" : "false", schedule?.text,
                      Self.next(schedule)])
        }
        return try find(id: w.id, account: w.accountId)!
    }

    /// Deletes the workflow (its runs cascade) and queues the drop of its warehouse schema in the same
    /// transaction, so the schema goes even if the warehouse is unreachable right now.
    public func delete(_ w: WorkflowRecord) throws -> Bool {
        try pool.transaction { db in
            guard try db.execute("DELETE FROM workflows WHERE id = $1 AND account_id = $2", [w.id, w.accountId]).affectedRows == 1 else {
                return false
            }
            _ = try db.execute("UPDATE jobs SET cancel_requested = true WHERE kind = $1 AND payload->>'workflow' = $2 AND state = 'running'",
                               [Self.runKind, w.id])
            _ = try db.execute("""
                UPDATE jobs SET state = 'cancelled', cancel_requested = true, finished_at = now()
                WHERE kind = $1 AND payload->>'workflow' = $2 AND state IN ('available', 'retryable')
                """, [Self.runKind, w.id])
            var job = JobQueue.NewJob(queue: Self.queue, kind: Self.dropKind,
                                      payload: ["workflow": .string(w.id), "connection": .string(w.connection), "schema": .string(w.schema)])
            job.accountId = w.accountId
            job.maxAttempts = 20
            try JobQueue.enqueue(job, on: db)
            return true
        }
    }

    // MARK: runs

    /// Queues a run: the run row and its job commit together. Nil when a run for the same scheduled time
    /// already exists (the scheduler lost a race it must not win twice).
    public static func startRun(_ w: WorkflowRecord, createdBy: String?, variables: JSON, trigger: String, scheduledFor: String?,
                                on db: PGConnection) throws -> Int64? {
        let r = try db.execute("""
            INSERT INTO workflow_runs (workflow_id, account_id, created_by, trigger, scheduled_for, variables, document)
            SELECT id, account_id, $2, $3, $4::timestamptz, $5::jsonb, document FROM workflows WHERE id = $1
            ON CONFLICT (workflow_id, scheduled_for) DO NOTHING RETURNING id
            """, [w.id, createdBy, trigger, scheduledFor, variables.text])
        guard let runId = r.string(0, 0).flatMap(Int64.init) else { return nil }
        var job = JobQueue.NewJob(queue: queue, kind: runKind, payload: ["workflow": .string(w.id), "run": .string(String(runId))],
                                  uniqueKey: "workflow_run:\(runId)")
        job.accountId = w.accountId
        job.createdBy = createdBy ?? w.ownerId
        job.maxAttempts = 5
        let jobId = try JobQueue.enqueue(job, on: db)
        _ = try db.execute("UPDATE workflow_runs SET job_id = $2 WHERE id = $1", [String(runId), jobId.map { String($0) }])
        return runId
    }

    public func run(id: String, workflow: String) throws -> JSON? {
        guard let runId = Int64(id), runId > 0 else { return nil }
        return try pool.withConnection { db in
            let r = try db.execute("""
                SELECT id, status, nodes::text, outputs::text, error, trigger, to_char(scheduled_for AT TIME ZONE 'UTC', \(Self.ts)),
                       to_char(created_at AT TIME ZONE 'UTC', \(Self.ts)), to_char(started_at AT TIME ZONE 'UTC', \(Self.ts)),
                       to_char(finished_at AT TIME ZONE 'UTC', \(Self.ts)), job_id,
                       (extract(epoch FROM finished_at - started_at) * 1000)::bigint
                FROM workflow_runs WHERE id = $1 AND workflow_id = $2
                """, [String(runId), workflow])
            return r.rowCount == 1 ? Self.runJSON(r, 0) : nil
        }
    }

    static func runJSON(_ r: PGResult, _ i: Int) -> JSON {
        ["id": .string(r.string(i, 0)!), "status": .string(r.string(i, 1)!),
         "nodes": r.string(i, 2).flatMap { try? JSON.decode($0) } ?? .object([:]),
         "outputs": r.string(i, 3).flatMap { try? JSON.decode($0) } ?? .object([:]),
         "error": .optional(r.string(i, 4)), "trigger": .string(r.string(i, 5)!), "scheduledFor": .optional(r.string(i, 6)),
         "createdAt": .string(r.string(i, 7)!), "startedAt": .optional(r.string(i, 8)), "finishedAt": .optional(r.string(i, 9)),
         "jobId": .optional(r.string(i, 10)), "ms": r.int(i, 11).map(JSON.int) ?? .null]
    }

    public func runs(workflow: String, limit: Int = 50) throws -> [JSON] {
        try pool.withConnection { db in
            let r = try db.execute("""
                SELECT id, status, nodes::text, outputs::text, error, trigger, to_char(scheduled_for AT TIME ZONE 'UTC', \(Self.ts)),
                       to_char(created_at AT TIME ZONE 'UTC', \(Self.ts)), to_char(started_at AT TIME ZONE 'UTC', \(Self.ts)),
                       to_char(finished_at AT TIME ZONE 'UTC', \(Self.ts)), job_id,
                       (extract(epoch FROM finished_at - started_at) * 1000)::bigint
                FROM workflow_runs WHERE workflow_id = $1 ORDER BY id DESC LIMIT $2
                """, [workflow, String(limit)])
            return (0..<r.rowCount).map { Self.runJSON(r, $0) }
        }
    }

    /// The table holding a node's latest successful result, if any.
    public func latestTable(workflow: String, node: String) throws -> String? {
        try pool.withConnection { db in
            try db.execute("""
                SELECT nodes->$2->>'table' FROM workflow_runs
                WHERE workflow_id = $1 AND nodes->$2->>'status' = 'success' AND nodes->$2->>'table' IS NOT NULL
                ORDER BY id DESC LIMIT 1
                """, [workflow, node]).string(0, 0)
        }
    }

    /// Cancels a run: a pending one at once, a running one through its job (the worker cancels the statement).
    public func cancel(run id: String, workflow: String) throws -> Bool {
        guard let runId = Int64(id) else { return false }
        return try pool.transaction { db in
            let r = try db.execute("SELECT job_id, status FROM workflow_runs WHERE id = $1 AND workflow_id = $2 FOR UPDATE",
                                   [String(runId), workflow])
            guard r.rowCount == 1 else { return false }
            if let job = r.string(0, 0) {
                _ = try db.execute("""
                    UPDATE jobs SET cancel_requested = true,
                      state = CASE WHEN state IN ('available', 'retryable') THEN 'cancelled' ELSE state END,
                      finished_at = CASE WHEN state IN ('available', 'retryable') THEN now() ELSE finished_at END
                    WHERE id = $1
                    """, [job])
            }
            _ = try db.execute("""
                UPDATE workflow_runs SET status = 'cancelled', finished_at = coalesce(finished_at, now())
                WHERE id = $1 AND status IN ('pending', 'running')
                """, [String(runId)])
            return true
        }
    }
}
