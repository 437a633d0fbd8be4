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
    static let resetScript = """
        RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL; CLOSE ALL; UNLISTEN *;
        SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES
        """

    /// Returns the session to the state a fresh connection has, keeping the prepared statements the
    /// bookkeeping knows and deallocating every other one (SQL-level `PREPARE`). Throws when the
    /// connection cannot be trusted to be clean; the pool then closes it.
    func resetSession() throws {
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            throw PGError(sqlstate: "08003", message: "connection closed", connectionLost: true)
        }
        statementTimeout = nil
        switch PQtransactionStatus(handle) {
        case PQTRANS_IDLE: break
        case PQTRANS_INTRANS, PQTRANS_INERROR: try executeScript("ROLLBACK")
        default: throw PGError(sqlstate: nil, message: "connection busy at check-in")
        }
        try executeScript(Self.resetScript)
        let statements = try execute("SELECT name, from_sql FROM pg_prepared_statements")
        var serverNames = Set<String>()
        for row in 0..<statements.rowCount {
            guard let name = statements.string(row, 0) else { continue }
            if statements.string(row, 1) == "t" || !preparedNames.contains(name) {
                try execute("DEALLOCATE " + (try quoteIdentifier(name)))
            } else {
                serverNames.insert(name)
            }
        }
        keepPrepared(only: serverNames)
        primedMode = .readWrite
    }

    /// Leaves the idle connection in `mode`, so the next checkout wanting that mode pays no round trip.
    func prime(_ mode: PGSessionMode) throws {
        guard mode != primedMode else { return }
        switch mode {
        case .readOnly: try executeScript("BEGIN READ ONLY")
        case .readWrite: try executeScript("ROLLBACK")
        }
        primedMode = mode
        primedAt = Date()
    }

    /// Puts a connection taken from the idle list into `mode` for the caller. A READ ONLY transaction opened
    /// in the background is reused only while young: `now()` is the transaction's start time.
    func enter(_ mode: PGSessionMode, maxPrimedAge: TimeInterval) throws {
        if mode == .readOnly, primedMode == .readOnly, -primedAt.timeIntervalSinceNow > maxPrimedAge {
            try executeScript("ROLLBACK; BEGIN READ ONLY")
            primedAt = Date()
            return
        }
        try prime(mode)
    }
}
