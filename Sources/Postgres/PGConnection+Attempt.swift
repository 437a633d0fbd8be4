import CLibPQ

extension PGConnection {
    /// Runs `body`, a probe whose failure the caller can live with (a statement that may be refused, an
    /// estimate that may be missing), and returns nil when the server refused it, with the session as it
    /// was before. Inside a transaction (every read-only session is one) a failed statement would abort
    /// the whole transaction and every later statement of the request would fail with "current
    /// transaction is aborted"; the probe therefore runs under a savepoint that is rolled back on failure.
    /// A lost connection, a cancelled statement (deadline, client gone) or a non-server error still throws:
    /// the request cannot go on then.
    public func attempt<T>(_ body: () throws -> T) throws -> T? {
        guard let handle, PQtransactionStatus(handle) == PQTRANS_INTRANS else {
            do { return try body() } catch let e as PGError where Self.isRefusal(e) { return nil }
        }
        try executeScript("SAVEPOINT tessera_attempt")
        do {
            let value = try body()
            try executeScript("RELEASE SAVEPOINT tessera_attempt")
            return value
        } catch let e as PGError where !e.connectionLost {
            try executeScript("ROLLBACK TO SAVEPOINT tessera_attempt; RELEASE SAVEPOINT tessera_attempt")
            if Self.isRefusal(e) { return nil }
            throw e
        }
    }

    /// The server refused the statement itself (not a lost connection, not a cancel: 57014).
    static func isRefusal(_ e: PGError) -> Bool { !e.connectionLost && e.sqlstate != "57014" && e.sqlstate != nil }
}
