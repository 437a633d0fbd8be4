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

    /// Returns the session to the state a fresh connection has (see `ResetStatement`), keeping the prepared
    /// statements the bookkeeping knows and deallocating every other one (SQL-level `PREPARE`), and leaves it
    /// primed for `mode`. A read-only checkout still inside the pool's READ ONLY transaction takes the short way
    /// (`resetReadOnly`); otherwise rollback, reset, the prepared-statement listing and the priming go out
    /// together (`fullReset`). Either is one round trip, paid after the response was sent (only a stray
    /// prepared statement costs more). Throws when the connection cannot be trusted to be clean; the pool then
    /// closes it. Returns whether the short read-only reset sufficed (false: the full reset ran).
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
        let rollback: Bool
        switch PQtransactionStatus(handle) {
        case PQTRANS_IDLE: rollback = false
        case PQTRANS_INTRANS, PQTRANS_INERROR: rollback = true
        default: throw PGError(sqlstate: nil, message: "connection busy at check-in")
        }
        let reset = Self.fullReset(rollback: rollback, priming: mode)
        try applyReset(reset, try pipeline(reset), mode: mode)
        return false
    }

    /// Takes over what a reset pipeline (`fullReset` or `shortReadOnlyReset`, at check-in or behind a statement)
    /// answered, all of it successful: checks that each reset statement answered with its own command tag and
    /// that the session is where the reset leaves it (an open READ ONLY transaction and its new stamp, or no
    /// transaction), records the stamp and the mode, and settles the prepared statements against the listing.
    /// A statement that was not the pool's own closes the connection; any other surprise throws, and the
    /// session counts as not reset.
    func applyReset(_ segments: [[PipelineStatement]], _ results: [PGResult], mode: PGSessionMode) throws {
        let statements = segments.flatMap { $0 }
        guard let handle, results.count == statements.count else {
            throw PGError(sqlstate: nil, message: "the reset returned \(results.count) results for \(statements.count) statements")
        }
        var listing: PGResult?
        var stamp: String?
        for (statement, result) in zip(statements, results) {
            switch statement {
            case let .reset(reset, _):
                guard result.hasCommandStatus(reset.tag) else { throw hijacked(reset.name) }
                if reset == .stamp { stamp = result.string(0, 0) }
            case .text(Self.preparedListing): listing = result
            case .text, .prepare: break
            }
        }
        let open = PQtransactionStatus(handle) == PQTRANS_INTRANS
        guard let listing, mode == .readOnly ? open && stamp != nil : PQtransactionStatus(handle) == PQTRANS_IDLE else {
            throw PGError(sqlstate: nil, message: "the reset left the session in an unexpected state")
        }
        readOnlyStamp = stamp
        primedMode = mode
        primedAt = Date()
        try settlePrepared(listing, name: 0, fromSQL: 1)
    }

    /// Brings the bookkeeping in step with the server's listing of prepared statements (a client may have
    /// deallocated some) and deallocates every statement it does not know, then primes the session again.
    /// The reset's own statements are not the client's to deallocate or replace: one listed as SQL-level, or
    /// missing, closes the connection (see `ResetStatement`).
    func settlePrepared(_ listing: PGResult, name nameColumn: Int, fromSQL fromSQLColumn: Int) throws {
        let known = preparedNames
        var serverNames: [String] = []
        serverNames.reserveCapacity(listing.rowCount)
        var strays: [String] = []
        for row in 0..<listing.rowCount {
            guard let name = listing.string(row, nameColumn) else { continue }
            let fromSQL = listing.value(row, fromSQLColumn)?.first == UInt8(ascii: "t")
            if fromSQL, ResetStatement.isReserved(name) { throw hijacked(name) }
            if fromSQL || !known.contains(name) {
                strays.append(name)
            } else {
                serverNames.append(name)
            }
        }
        // The server's names are distinct and each is known here, so equal counts mean the same set: the usual
        // case needs no second set (the listing is read at every check-in).
        if serverNames.count != known.count {
            let held = Set(serverNames)
            if let missing = known.first(where: { ResetStatement.isReserved($0) && !held.contains($0) }) {
                throw hijacked(missing)
            }
            keepPrepared(only: held)
        }
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
        case .readOnly: readOnlyStamp = try scriptResults("BEGIN READ ONLY; " + ResetStatement.stamp.sql).last?.string(0, 0)
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
            readOnlyStamp = try scriptResults("ROLLBACK; BEGIN READ ONLY; " + ResetStatement.stamp.sql).last?.string(0, 0)
            primedAt = Date()
            return
        }
        try prime(mode)
    }
}
