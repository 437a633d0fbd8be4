import CLibPQ
import Foundation

extension PGConnection {
    /// The short reset of a read-only checkout, for a connection still inside the READ ONLY transaction the
    /// pool opened for it. Why rolling that transaction back, plus one statement, leaves nothing behind:
    ///
    /// - `SET`, `set_config`, `SET ROLE`, `SET SESSION AUTHORIZATION` (and so `RESET ...`) are transactional:
    ///   a rollback restores every GUC, role and session authorization to its value at `BEGIN`, which the
    ///   full reset had left clean.
    /// - Cursors die with the transaction that declared them; `WITH HOLD` ones only become session objects
    ///   at commit. `LISTEN`/`UNLISTEN` take effect at commit. `NOTIFY`s are dropped with the rollback.
    /// - Temporary tables and sequences: every `CREATE` is refused in a READ ONLY transaction, `nextval` and
    ///   `setval` too on all but temporary sequences, of which none exist (the full reset discards them and
    ///   none can be created here); anything else they touch is transactional.
    /// - What survives a rollback: session-level advisory locks and SQL-level `PREPARE` (and the protocol
    ///   level statements of the bookkeeping, which are meant to). The reset unlocks the former and lists
    ///   the latter, so strays are deallocated as in the full reset.
    ///
    /// All of that holds only if the open transaction is the pool's own: a client that ended it (`COMMIT`,
    /// `COMMIT AND CHAIN`, `PREPARE TRANSACTION`, where a guard lets those through) may have committed
    /// session state and begun another. So the reset first checks that the transaction's start, `now()`,
    /// is still the one recorded when the pool opened it (distinct transactions start in distinct client
    /// messages, so at distinct microseconds); on a mismatch it fails before the ROLLBACK, and the full reset
    /// runs. An idle connection (the client ended the transaction) or an aborted one (no statement runs
    /// there, so the check cannot) gets the full reset too. Returns false when the full reset must run.
    ///
    /// One pipeline (`shortReadOnlyReset`) of the reset's prepared statements, with the stamp bound. (Measured
    /// with pgbench on the server's CPU: about half the full reset; the stamp as text and two plain SELECTs
    /// cost less than epoch arithmetic or a join of the two.)
    func resetReadOnly() throws -> Bool {
        guard let handle, primedMode == .readOnly, let stamp = readOnlyStamp,
              PQtransactionStatus(handle) == PQTRANS_INTRANS else { return false }
        readOnlyStamp = nil
        let reset = Self.shortReadOnlyReset(stamp: stamp)
        let results: [PGResult]
        do {
            results = try pipeline(reset)
        } catch let error as PGError where !error.connectionLost && isHealthy {
            // Not the pool's transaction (or something unforeseen): the full reset starts with a ROLLBACK.
            return false
        }
        try applyReset(reset, results, mode: .readOnly)
        return true
    }
}
