/// A statement of the session reset, prepared once per connection at the protocol level under a reserved name:
/// run by name, the server neither parses nor plans it per reset (measured with pgbench on one connection:
/// the read-write reset behind a statement added about 67 µs of PostgreSQL CPU as unnamed statements, about
/// 31 µs prepared; means of 8 rounds on a loaded machine).
///
/// Why a client cannot turn one into something else: its SQL can `DEALLOCATE` the name, and `PREPARE` another
/// statement under it, but only a SELECT-like one (SELECT, VALUES, INSERT, UPDATE, DELETE, MERGE). So
/// - a deallocated statement fails the reset, and a reset that fails closes the connection;
/// - every utility statement must answer with its own command tag (`tag`), which no SELECT-like one returns;
/// - the SELECT-like ones are vouched for by the listing of prepared statements, run unnamed in the same
///   reset: a reserved name listed as SQL-level (`from_sql`), or missing, is a hijack and closes the
///   connection, which drops whatever the hijacked statement left undone (advisory locks, settings).
struct ResetStatement: Hashable, Sendable {
    let name: String
    let sql: String
    /// The command tag (`PQcmdStatus`) the statement answers with.
    let tag: String

    private init(_ suffix: String, _ sql: String, tag: String) {
        name = Self.reservedPrefix + suffix
        self.sql = sql
        self.tag = tag
    }

    static let reservedPrefix = "tessera_reset_"
    static func isReserved(_ name: String) -> Bool { name.hasPrefix(reservedPrefix) }

    /// Everything a client can leave behind on a session, undone without `DISCARD ALL`, which would also drop
    /// the protocol-level prepared statements the tile and query paths rely on (about 4x on tiles), these
    /// included. `RESET ALL` alone does not reset `role` or the session authorization, hence those come first.
    static let session = [
        ResetStatement("authorization", "RESET SESSION AUTHORIZATION", tag: "RESET"),
        ResetStatement("role", "RESET ROLE", tag: "RESET"),
        ResetStatement("settings", "RESET ALL", tag: "RESET"),
        ResetStatement("cursors", "CLOSE ALL", tag: "CLOSE CURSOR ALL"),
        ResetStatement("listen", "UNLISTEN *", tag: "UNLISTEN"),
        ResetStatement("locks", "SELECT pg_catalog.pg_advisory_unlock_all()", tag: "SELECT 1"),
        ResetStatement("temp", "DISCARD TEMP", tag: "DISCARD TEMP"),
        ResetStatement("sequences", "DISCARD SEQUENCES", tag: "DISCARD SEQUENCES"),
    ]
    static let rollback = ResetStatement("rollback", "ROLLBACK", tag: "ROLLBACK")
    static let beginReadOnly = ResetStatement("begin_read_only", "BEGIN READ ONLY", tag: "BEGIN")
    /// The start of the READ ONLY transaction just opened (see `resetReadOnly`). Text: cheaper for the server
    /// than any arithmetic on it.
    static let stamp = ResetStatement("stamp", "SELECT pg_catalog.now()::pg_catalog.text", tag: "SELECT 1")
    /// Fails (division by zero) unless the open transaction is the one stamped `$1`; unlocks otherwise. It runs
    /// under the client's `search_path` (the ROLLBACK comes after it), and a prepared statement is analysed
    /// again when that changes, so every name is qualified: a `search_path` that puts a schema before
    /// `pg_catalog` must not swap in another `now`, `=`, `/` or `pg_advisory_unlock_all`.
    static let checkStamp = ResetStatement(
        "check_stamp", "SELECT 1 OPERATOR(pg_catalog./) (pg_catalog.now() OPERATOR(pg_catalog.=) $1::pg_catalog.timestamptz)"
            + "::pg_catalog.int4, pg_catalog.pg_advisory_unlock_all()", tag: "SELECT 1")

    static let all = session + [rollback, beginReadOnly, stamp, checkStamp]
}

extension PGConnection {
    /// Lists the prepared statements, so strays are found in the same round trip as the reset: from the catalog
    /// function itself, which the server plans for about half the CPU of the `pg_prepared_statements` view
    /// over it (measured with pgbench: ~20 against ~28 µs per listing). Unnamed on purpose: it is what vouches
    /// for the reset's prepared statements, so no client can have replaced it. Run at every reset, whoever wrote
    /// the checkout's SQL: reading a view, or a relation with row-level security, runs its owner's functions,
    /// which can `PREPARE` and `DEALLOCATE` (even in a READ ONLY transaction); tile statements embed a query
    /// source's text and resolve unqualified names through the session's `search_path`. So no statement text,
    /// built by the server or not, proves that the listing has nothing to find (PooledResetHijackTests).
    static let preparedListing = "SELECT name, from_sql FROM pg_catalog.pg_prepared_statement()"

    /// The full reset: a ROLLBACK when a transaction is open, the session statements and the listing, then
    /// for a read-only priming a READ ONLY transaction and its stamp. The priming is a segment of its own, so
    /// the reset commits before the READ ONLY transaction opens: a later ROLLBACK of that transaction cannot
    /// bring back what the reset undid.
    static func fullReset(rollback: Bool, priming mode: PGSessionMode) -> [[PipelineStatement]] {
        let reset = (rollback ? [ResetStatement.rollback] : []) + ResetStatement.session
        let segment = reset.map { PipelineStatement.reset($0) } + [.text(preparedListing)]
        guard mode == .readOnly else { return [segment] }
        return [segment, [.reset(.beginReadOnly), .reset(.stamp)]]
    }

    /// The short reset of a read-only checkout (see `resetReadOnly`) for a transaction stamped `stamp`: the
    /// stamp check that also unlocks and the listing (both before the ROLLBACK, which changes neither),
    /// ROLLBACK, BEGIN READ ONLY and the new transaction's stamp. That last SELECT is also the transaction's
    /// first query, after which `SET TRANSACTION READ WRITE` is refused.
    static func shortReadOnlyReset(stamp: String) -> [[PipelineStatement]] {
        [[.reset(.checkStamp, [stamp]), .text(preparedListing), .reset(.rollback), .reset(.beginReadOnly), .reset(.stamp)]]
    }

    /// Prepares the reset's statements the bookkeeping does not hold, in one round trip: on a new connection of
    /// a pool that resets sessions, and after the bookkeeping deallocated every statement. A connection whose
    /// reset cannot be prepared is closed.
    func prepareResetStatements() throws {
        let missing = ResetStatement.all.filter { !preparedNames.contains($0.name) }
        guard !missing.isEmpty else { return }
        do {
            _ = try pipeline([missing.map { .prepare($0) }])
        } catch {
            abandon()
            throw error
        }
        for statement in missing { notePrepared(statement.name, for: statement.sql) }
    }

    /// Closes a connection on which a reset statement was not the pool's own: whatever the replacement did or
    /// left undone goes with the session.
    func hijacked(_ name: String) -> PGError {
        abandon()
        return PGError(sqlstate: nil, message: "the session reset's statement \(name) was replaced or removed", connectionLost: true)
    }
}
