import Foundation
import Postgres
import SQLKit

/// One scan of a loaded staging table: its rows, the rows without geometry and the invalid geometries.
///
/// Validity (ST_IsValid, GEOS) gets a bounded budget of its own (60 s, less when the import's deadline is
/// nearer); past it, or when GEOS fails on a geometry, the counts are made without it and `invalid` is nil
/// (the import then says validity was not checked). The counts themselves always run to the deadline.
struct StagingScan: Sendable {
    var rows = 0
    var empty = 0
    var invalid: Int?
    /// How long the scan took, for the import's phase clock.
    var ms = 0

    static let validityBudgetMs = 60_000

    static func run(on db: PGConnection, table: SQL, deadline: Date) throws -> StagingScan {
        let started = DispatchTime.now().uptimeNanoseconds
        var scan = StagingScan()
        do {
            let r = try inTransaction(db, timeoutMs: min(validityBudgetMs, remainingMs(deadline))) {
                try db.execute("SET LOCAL client_min_messages = 'error'")
                return try db.execute("""
                    SELECT count(*), count(*) FILTER (WHERE geom IS NULL), count(*) FILTER (WHERE geom IS NOT NULL AND NOT ST_IsValid(geom))
                    FROM \(table)
                    """ as SQL)
            }
            (scan.rows, scan.empty, scan.invalid) = (r.int(0, 0) ?? 0, r.int(0, 1) ?? 0, r.int(0, 2) ?? 0)
        } catch {
            guard db.isHealthy else { throw error }
            let r = try inTransaction(db, timeoutMs: remainingMs(deadline)) {
                try db.execute("SELECT count(*), count(*) FILTER (WHERE geom IS NULL) FROM \(table)" as SQL)
            }
            (scan.rows, scan.empty) = (r.int(0, 0) ?? 0, r.int(0, 1) ?? 0)
        }
        scan.ms = Int((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)
        return scan
    }

    static func remainingMs(_ deadline: Date) -> Int { max(1000, Int(deadline.timeIntervalSinceNow * 1000)) }

    /// `body` in a transaction whose statements may run `timeoutMs` (SET LOCAL: it ends with the transaction).
    static func inTransaction<T>(_ db: PGConnection, timeoutMs: Int, _ body: () throws -> T) throws -> T {
        try db.execute("BEGIN")
        do {
            try db.execute("SELECT set_config('statement_timeout', $1, true)", [String(timeoutMs)])
            let value = try body()
            try db.execute("COMMIT")
            return value
        } catch {
            if db.isHealthy { _ = try? db.execute("ROLLBACK") }
            throw error
        }
    }

    /// The scan on a second connection of the pool, on its own thread, while the caller builds the index.
    /// Made only when the pool has a connection free now, so a busy pool never makes an import wait for
    /// one (the caller then scans on its own session).
    struct Parallel {
        private let work: BackgroundWork<StagingScan>

        init?(pool: PGPool, table: SQL, deadline: Date) {
            guard pool.hasFreeConnection else { return nil }
            work = BackgroundWork { try pool.withConnection { try StagingScan.run(on: $0, table: table, deadline: deadline) } }
        }

        /// Waits for the scan; nil when it failed (e.g. no connection after all): the caller scans itself.
        func result() -> StagingScan? { try? work.result() }

        /// Waits for the thread, whatever happened to the caller: its session must end before the staging
        /// table is swapped or dropped.
        func finish() { work.wait() }
    }
}
