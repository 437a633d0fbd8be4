import Foundation
import Postgres
import XCTest

/// The short reset of a read-only checkout (a ROLLBACK of the pool's READ ONLY transaction plus one
/// statement) against the real server: each claim of `PGConnection.resetReadOnly`'s argument is checked by
/// doing the thing in a read-only checkout and looking for it in the next checkout of the same connection.
final class PooledReadOnlyResetTests: XCTestCase {
    var superuser = ""

    override func setUpWithError() throws {
        superuser = try IntegrationEnvironment.superuserWithPoisonRole()
    }

    /// Counts the resets of each kind `body` caused on the pool's one connection: read inside checkouts,
    /// which wait for the reset before them.
    func counting(_ pool: PGPool, _ body: () throws -> Void) throws -> (readOnly: Int, full: Int) {
        var before = (readOnly: 0, full: 0), after = (readOnly: 0, full: 0)
        try pool.withSession(.readOnly) { db in before = db.resets }
        try body()
        try pool.withSession(.readOnly) { db in after = db.resets }
        // The first checkout's own reset: it did nothing, so the short one.
        return (after.readOnly - before.readOnly - 1, after.full - before.full)
    }

    func state(_ db: PGConnection) throws -> [String?] {
        let r = try db.execute(PooledSessionResetTests.probe)
        return (0..<r.columnCount).map { r.string(0, $0) }
    }

    func pid(_ db: PGConnection) throws -> String? { try db.execute("SELECT pg_backend_pid()::text").string(0, 0) }

    func testWhatAReadOnlyRequestDoesIsGoneAfterTheShortReset() throws {
        let clean = try state(try PGConnection(superuser))
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        pool.maxPrimedAge = 3600
        var known: Set<String> = []
        var first: String?
        try pool.withSession(.readOnly) { db in
            first = try pid(db)
            XCTAssertEqual(try db.execute("SELECT $1::int + 1", ["41"], prepare: true).int(0, 0), 42)
            known = db.preparedNames
        }
        let counts = try counting(pool) {
            try pool.withSession(.readOnly) { db in
                // One statement per message, as a request's would be; the session authorization goes last
                // because it_poison may do little else.
                for statement in [
                    "SET work_mem = '7MB'", "SET search_path = pg_temp, public", "SET statement_timeout = 1234",
                    "SELECT set_config('tessera.poison', 'yes', false)", "SELECT pg_advisory_lock(4244)",
                    "PREPARE poison_stmt AS SELECT 1", "DECLARE poison_cursor CURSOR WITH HOLD FOR SELECT 1",
                    "LISTEN poison_channel", "SET ROLE it_poison", "RESET ROLE", "SET SESSION AUTHORIZATION it_poison",
                ] { try db.executeScript(statement) }
                XCTAssertEqual(try db.execute("SELECT current_user::text, session_user::text").string(0, 1), "it_poison")
                XCTAssertEqual(try db.execute("SELECT count(*) FROM pg_cursors WHERE name = 'poison_cursor'").int(0, 0), 1)
                XCTAssertEqual(try pid(db), first)
            }
        }
        XCTAssertEqual(counts.readOnly, 1, "the read-only checkout took the short reset")
        XCTAssertEqual(counts.full, 0)
        try pool.withSession(.readOnly) { db in
            XCTAssertEqual(try pid(db), first, "the same pooled connection")
            XCTAssertEqual(try state(db), clean)
            XCTAssertEqual(db.preparedNames, known, "the bookkeeping keeps its statements")
            XCTAssertEqual(try db.execute("SELECT $1::int + 1", ["1"], prepare: true).int(0, 0), 2)
        }
        // A session-level advisory lock was really released: another session can take it.
        XCTAssertEqual(try PGConnection(superuser).execute("SELECT pg_try_advisory_lock(4244)").bool(0, 0), true)
    }

    func testAClientThatEndedThePoolsTransactionGetsTheFullReset() throws {
        let clean = try state(try PGConnection(superuser))
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        pool.maxPrimedAge = 3600
        // COMMIT AND CHAIN leaves the connection inside a READ ONLY transaction, but not the pool's one: the
        // role set before it is committed, and a rollback would not undo it.
        let chained = try counting(pool) {
            try pool.withSession(.readOnly) { db in
                try db.executeScript("SELECT set_config('role', 'it_poison', false), set_config('tessera.poison', 'yes', false)")
                try db.executeScript("COMMIT AND CHAIN")
                XCTAssertFalse(db.isIdle)
                XCTAssertEqual(try db.execute("SELECT current_setting('transaction_read_only')").string(0, 0), "on")
            }
        }
        XCTAssertEqual(chained.full, 1, "the stamp check sent it to the full reset")
        try pool.withSession(.readOnly) { db in XCTAssertEqual(try state(db), clean) }
        // Ended outright (the connection is idle at check-in), or aborted: the full reset as well.
        let ended = try counting(pool) {
            try pool.withSession(.readOnly) { db in
                try db.executeScript("SELECT set_config('tessera.poison', 'yes', false), pg_advisory_lock(4245)")
                try db.executeScript("COMMIT")
                try db.executeScript("SET work_mem = '7MB'")
                XCTAssertTrue(db.isIdle)
            }
            try pool.withSession(.readOnly) { db in
                XCTAssertThrowsError(try db.execute("SELECT 1 / 0"))
            }
        }
        XCTAssertEqual(ended.full, 2)
        try pool.withSession(.readOnly) { db in
            XCTAssertEqual(try state(db), clean)
            XCTAssertEqual(try db.execute("SELECT current_setting('transaction_read_only')").string(0, 0), "on")
        }
    }

    func testAReadOnlyCheckoutCannotTurnItsTransactionReadWrite() throws {
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        pool.maxPrimedAge = 3600
        for _ in 0..<2 {  // a new connection, then one primed by the reset
            try pool.withSession(.readOnly) { db in
                XCTAssertThrowsError(try db.executeScript("SET TRANSACTION READ WRITE"), "the pool's stamp was the first query") {
                    XCTAssertEqual(($0 as? PGError)?.sqlstate, "25001")
                }
            }
        }
        for create in ["CREATE TABLE it_read_only_escape (x int)", "CREATE TEMP TABLE poison (x int)"] {
            try pool.withSession(.readOnly) { db in
                XCTAssertThrowsError(try db.execute(create), "temporary tables too: nothing for the short reset to drop") {
                    XCTAssertEqual(($0 as? PGError)?.sqlstate, "25006")
                }
            }
        }
    }

    func testAStaleStampIsRenewedWithTheTransaction() throws {
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        pool.maxPrimedAge = 0
        let counts = try counting(pool) {
            for _ in 0..<3 {
                try pool.withSession(.readOnly) { db in
                    // The transaction was renewed at checkout (age 0): the short reset must still recognise it.
                    XCTAssertEqual(try db.execute("SELECT current_setting('transaction_read_only')").string(0, 0), "on")
                }
            }
        }
        XCTAssertEqual(counts.full, 0)
        XCTAssertEqual(counts.readOnly, 3)
    }
}
