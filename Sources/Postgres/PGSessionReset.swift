import CLibPQ
import Foundation

/// How a checked-out connection runs its statements: read-only means inside a READ ONLY transaction
/// that is rolled back at check-in, so neither writes nor `set_config` survive the request.
public enum PGSessionMode: Sendable {
    case readWrite
    case readOnly
}

extension PGConnection {
    /// The mode the pool checked this connection out in (policy code reads it; only the pool sets it).
    public var sessionMode: PGSessionMode { primedMode }

    /// Everything a client can leave behind on a session, undone without `DISCARD ALL`, which would also
    /// drop the protocol-level prepared statements the tile and query paths rely on (about 4x on tiles).
    /// `RESET ALL` alone does not reset `role` or the session authorization, hence those come first.
    /// The last statement lists the prepared statements, so strays are found in the same round trip: from the
    /// catalog function itself, which the server plans for about half the CPU of the `pg_prepared_statements`
    /// view over it (measured with pgbench: ~20 against ~28 µs per listing).
    /// (Unnamed on purpose: prepared, the reset's own statements would be server state a client could
    /// deallocate or replace, and the server would hold statements the bookkeeping does not know.)
    static let resetStatements = [
        "RESET SESSION AUTHORIZATION", "RESET ROLE", "RESET ALL", "CLOSE ALL", "UNLISTEN *",
        "SELECT pg_advisory_unlock_all()", "DISCARD TEMP", "DISCARD SEQUENCES",
        PGConnection.preparedListing,
    ]

    static let preparedListing = "SELECT name, from_sql FROM pg_catalog.pg_prepared_statement()"

    /// The start of the READ ONLY transaction just opened (see `resetReadOnly`). Text: cheaper for the server
    /// than any arithmetic on it.
    static let stampStatement = "SELECT now()::text"

    /// Returns the session to the state a fresh connection has, keeping the prepared statements the
    /// bookkeeping knows and deallocating every other one (SQL-level `PREPARE`), and leaves it primed for
    /// `mode`. A read-only checkout still inside the pool's READ ONLY transaction takes the short way
    /// (`resetReadOnly`); otherwise rollback, reset, the prepared-statement listing and the priming go out
    /// together. Either is one round trip, paid after the response was sent (only a stray prepared statement
    /// costs more). Throws when the connection cannot be trusted to be clean; the pool then closes it.
    /// Returns whether the short read-only reset sufficed (false: the full reset ran).
    @discardableResult
    func resetSession(priming mode: PGSessionMode = .readWrite) throws -> Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            throw PGError(sqlstate: "08003", message: "connection closed", connectionLost: true)
        }
        statementTimeout = nil
        if mode == .readOnly, try resetReadOnly() {
            resets.readOnly += 1
            return true
        }
        resets.full += 1
        readOnlyStamp = nil
        var rollback: [String] = []
        switch PQtransactionStatus(handle) {
        case PQTRANS_IDLE: break
        case PQTRANS_INTRANS, PQTRANS_INERROR: rollback = ["ROLLBACK"]
        default: throw PGError(sqlstate: nil, message: "connection busy at check-in")
        }
        let statements: PGResult
        if mode == .readOnly {
            // A pipeline, so the reset commits in its own segment before the READ ONLY transaction opens: a
            // later ROLLBACK of that transaction cannot bring back what the reset undid.
            let segments = (rollback.isEmpty ? [] : [rollback]) + [Self.resetStatements, ["BEGIN READ ONLY", Self.stampStatement]]
            let results = try pipeline(segments)
            statements = results[rollback.count + Self.resetStatements.count - 1]
            readOnlyStamp = results.last?.string(0, 0)
        } else {
            // Nothing to open afterwards: one simple-protocol message, which costs the server less.
            guard let last = try scriptResults((rollback + Self.resetStatements).joined(separator: "; ")).last else {
                throw PGError(sqlstate: nil, message: "the reset returned no listing")
            }
            statements = last
        }
        primedMode = mode
        primedAt = Date()
        try settlePrepared(statements, name: 0, fromSQL: 1)
        return false
    }

    /// Brings the bookkeeping in step with the server's listing of prepared statements (a client may have
    /// deallocated some) and deallocates every statement it does not know, then primes the session again.
    func settlePrepared(_ listing: PGResult, name nameColumn: Int, fromSQL fromSQLColumn: Int) throws {
        let known = preparedNames
        var serverNames = Set<String>()
        var strays: [String] = []
        for row in 0..<listing.rowCount {
            guard let name = listing.string(row, nameColumn) else { continue }
            if listing.string(row, fromSQLColumn) == "t" || !known.contains(name) {
                strays.append(name)
            } else {
                serverNames.insert(name)
            }
        }
        keepPrepared(only: serverNames)
        guard !strays.isEmpty else { return }
        let mode = primedMode
        if primedMode == .readOnly {
            try executeScript("ROLLBACK")
            primedMode = .readWrite
            readOnlyStamp = nil
        }
        for name in strays { try execute("DEALLOCATE " + (try quoteIdentifier(name))) }
        try prime(mode)
    }

    /// Leaves the idle connection in `mode`, so the next checkout wanting that mode pays no round trip.
    func prime(_ mode: PGSessionMode) throws {
        guard mode != primedMode else { return }
        switch mode {
        case .readOnly: readOnlyStamp = try scriptResults("BEGIN READ ONLY; " + Self.stampStatement).last?.string(0, 0)
        case .readWrite:
            readOnlyStamp = nil
            try executeScript("ROLLBACK")
        }
        primedMode = mode
        primedAt = Date()
    }

    /// Puts a connection taken from the idle list into `mode` for the caller. A READ ONLY transaction opened
    /// in the background is reused only while young: `now()` is the transaction's start time.
    func enter(_ mode: PGSessionMode, maxPrimedAge: TimeInterval) throws {
        if mode == .readOnly, primedMode == .readOnly, -primedAt.timeIntervalSinceNow > maxPrimedAge {
            readOnlyStamp = try scriptResults("ROLLBACK; BEGIN READ ONLY; " + Self.stampStatement).last?.string(0, 0)
            primedAt = Date()
            return
        }
        try prime(mode)
    }
}
