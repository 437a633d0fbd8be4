import Foundation
import HTTPKit
import Observability
import Platform
import Postgres

/// Starts scheduled runs. Every sql-worker ticks it; a due workflow's row is claimed with
/// `FOR UPDATE SKIP LOCKED` and its `next_run_at` moved on in the same transaction that inserts the run,
/// and a run's due time is unique per workflow — so several workers (or VMs) start each due run once.
public struct WorkflowScheduler: Sendable {
    let services: Services
    public init(services: Services) { self.services = services }

    /// Starts the runs that are due; returns how many were started.
    @discardableResult
    public func tick(now: Date = Date()) throws -> Int {
        try services.metadata.transaction { db in
            let due = try db.execute("""
                SELECT id, schedule, to_char(next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') FROM workflows
                WHERE next_run_at <= now() ORDER BY next_run_at LIMIT 50 FOR UPDATE SKIP LOCKED
                """)
            var started = 0
            for i in 0..<due.rowCount {
                let id = due.string(i, 0)!, dueAt = due.string(i, 2)!
                let cron = due.string(i, 1).flatMap { try? Cron($0) }
                // The next due time after now: missed times while no worker ran are not run late one by one.
                _ = try db.execute("UPDATE workflows SET next_run_at = $2::timestamptz WHERE id = $1",
                                   [id, WorkflowStore.next(cron, after: now)])
                guard let w = try WorkflowStore(pool: services.metadata).find(id: id, account: nil) else { continue }
                if try WorkflowStore.startRun(w, createdBy: w.ownerId, variables: .object([:]), trigger: "schedule",
                                              scheduledFor: dueAt, on: db) != nil {
                    started += 1
                    Log.info("workflow_scheduled_run", [("workflow", id), ("due", dueAt)])
                }
            }
            return started
        }
    }

    /// Ticks every `interval` seconds on a thread of its own until the process exits.
    public func start(interval: Double) {
        let thread = Thread { [self] in
            while true {
                do { try tick() } catch { Log.warning("workflow_scheduler_failed", [("error", String(describing: error))]) }
                do {
                    let settled = try services.metadata.withConnection { try WorkflowStore.settleAbandonedRuns(on: $0) }
                    if settled > 0 { Log.warning("workflow_runs_abandoned", [("count", settled)]) }
                } catch { Log.warning("workflow_settle_failed", [("error", String(describing: error))]) }
                Thread.sleep(forTimeInterval: interval)
            }
        }
        thread.name = "workflow-scheduler"
        thread.start()
    }
}
