import Foundation
import HTTPKit
import Jobs
import Observability
import Platform
import Postgres

/// Runs SQL batch jobs for the sql-worker. The statement and a marker row keyed by the job id commit
/// together in the warehouse, so a job retried after a crash (the completion in the metadata database
/// did not happen) sees the marker and does not apply its change twice.
public struct BatchJobRunner: Sendable {
    let services: Services
    public init(services: Services) { self.services = services }

    static let markers = "carto.tessera_batch_markers"

    public func run(_ job: Job, _ context: JobContext) throws -> JSON? {
        guard let account = job.accountId, let name = job.payload["connection"]?.stringValue,
              let query = job.payload["query"]?.stringValue else {
            throw PermanentJobError("The job has no connection or query")
        }
        let parameters = job.payload["queryParameters"]?.arrayValue?.map(\.stringValue) ?? []
        let record: ConnectionRecord
        do { record = try services.warehouses.connection(account: account, name: name) } catch let e as APIError {
            throw PermanentJobError(e.message)
        }
        let pool = try services.warehouses.privilegedPool(for: record)
        let started = Date()
        let watch = PGConnection.Watch(isAborted: { context.isCancelled },
                                       deadline: Date().addingTimeInterval(Double(services.config.sqlJobTimeoutMs) / 1000))
        // Jobs of different users share pooled connections: the pool resets whatever a statement changed in
        // the session (SET, temp tables, locks) at check-in.
        return try pool.withConnection { db -> JSON in
            try db.executeScript("""
                CREATE SCHEMA IF NOT EXISTS carto;
                CREATE TABLE IF NOT EXISTS \(Self.markers) (job_id bigint PRIMARY KEY, finished_at timestamptz NOT NULL DEFAULT now());
                """)
            try db.execute("BEGIN")
            do {
                // The job's own statement timeout, not the API's; LOCAL ends with the transaction.
                try db.execute("SELECT set_config('statement_timeout', $1, true)", [String(services.config.sqlJobTimeoutMs)])
                if try db.execute("SELECT 1 FROM \(Self.markers) WHERE job_id = $1", [String(job.id)]).rowCount == 1 {
                    try db.execute("ROLLBACK")
                    return ["alreadyApplied": true]
                }
                let result = try db.execute(query, parameters, watch: watch)
                try db.execute("INSERT INTO \(Self.markers) (job_id) VALUES ($1)", [String(job.id)])
                if !result.commandStatus.hasPrefix("SELECT") { try db.execute(LevelsRefresh.publishCounters) }
                try db.execute("COMMIT")
                if !result.commandStatus.hasPrefix("SELECT") {
                    // Cached answers of the connection are purged and its levels rebuilt by the queue now, not by
                    // expiry or the next low-zoom tile. The change is committed (a retry finds its marker and
                    // stops), so a failure to ask is logged rather than failing a job whose write succeeded.
                    do { try DataChange.record(account: account, connection: name, pool: services.metadata) } catch {
                        Log.warning("data_change_not_queued", [("job", job.id), ("error", "\(error)")])
                    }
                }
                return ["command": .string(result.commandStatus), "affectedRows": result.affectedRows.map(JSON.int) ?? .null,
                        "executionTimeMs": .int(Int(Date().timeIntervalSince(started) * 1000))]
            } catch {
                if db.isHealthy { _ = try? db.execute("ROLLBACK") }
                if let e = error as? PGError, e.sqlstate != nil, !e.connectionLost, SQLStateStatus.map(e.sqlstate).status < 500 {
                    // The statement itself is wrong (or timed out): retrying cannot help.
                    throw PermanentJobError(APIError(e).message)
                }
                throw error
            }
        }
    }
}
