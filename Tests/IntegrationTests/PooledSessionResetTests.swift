import Foundation
import Postgres
import XCTest

/// The pool owns the session policy: a warehouse connection comes back clean from whatever a request did
/// to it, while the libpq prepared statements the bookkeeping knows survive (the tile path relies on them).
final class PooledSessionResetTests: XCTestCase {
    var superuser = ""

    override func setUpWithError() throws {
        superuser = try IntegrationEnvironment.superuserWithPoisonRole()
    }

    /// What a fresh session reports; the reset must return to exactly this.
    static let probe = """
        SELECT current_user::text, session_user::text, current_setting('statement_timeout'), current_setting('search_path'),
               current_setting('work_mem'), coalesce(current_setting('tessera.poison', true), ''),
               (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())::text,
               (to_regclass('pg_temp.poison') IS NULL)::text,
               (SELECT count(*) FROM pg_prepared_statements WHERE from_sql)::text,
               (SELECT count(*) FROM pg_listening_channels())::text,
               (SELECT count(*) FROM pg_cursors)::text
        """

    func state(_ db: PGConnection) throws -> [String?] {
        let r = try db.execute(Self.probe)
        return (0..<r.columnCount).map { r.string(0, $0) }
    }

    func testPoisonedConnectionComesBackCleanAndKeepsKnownPreparedStatements() throws {
        let clean = try state(try PGConnection(superuser))
        XCTAssertEqual(clean[5], "")
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        var pid: String?
        var known: Set<String> = []
        try pool.withSession(.readWrite) { db in
            pid = try db.execute("SELECT pg_backend_pid()::text").string(0, 0)
            XCTAssertEqual(try db.execute("SELECT $1::int + 1", ["41"], prepare: true).int(0, 0), 42)
            known = db.preparedNames
            // One statement per message: each commits on its own, as separate requests' statements would.
            for statement in [
                "CREATE TEMP TABLE poison (x int)", "SELECT pg_advisory_lock(4242)", "PREPARE poison_stmt AS SELECT 1",
                "LISTEN poison_channel", "BEGIN", "DECLARE poison_cursor CURSOR WITH HOLD FOR SELECT 1", "COMMIT",
                "SET statement_timeout = 1234", "SET search_path = pg_temp, public", "SET work_mem = '7MB'",
                "SELECT set_config('tessera.poison', 'yes', false)", "SELECT set_config('role', 'it_poison', false)",
                "SET SESSION AUTHORIZATION it_poison", "BEGIN",
            ] { try db.executeScript(statement) }
            XCTAssertThrowsError(try db.execute("SELECT 1 / 0"), "leaves an aborted transaction behind")
            let poisoned = try? state(db)
            XCTAssertNil(poisoned, "the aborted transaction refuses statements")
        }
        try pool.withSession(.readWrite) { db in
            XCTAssertEqual(try db.execute("SELECT pg_backend_pid()::text").string(0, 0), pid, "the same pooled connection")
            XCTAssertEqual(try state(db), clean)
            XCTAssertTrue(db.isIdle)
            XCTAssertEqual(db.preparedNames, known, "the bookkeeping keeps its statements")
            let held = try db.execute("SELECT name FROM pg_prepared_statements WHERE NOT from_sql")
            XCTAssertEqual(Set((0..<held.rowCount).compactMap { held.string($0, 0) }), known, "and the server still holds them")
            XCTAssertEqual(try db.execute("SELECT $1::int + 1", ["1"], prepare: true).int(0, 0), 2)
        }
    }

    func testStatementsAClientDeallocatedLeaveTheBookkeeping() throws {
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        var reset: Set<String> = []
        try pool.withSession(.readWrite) { db in
            reset = db.preparedNames
            _ = try db.execute("SELECT $1::text", ["a"], prepare: true)
            for name in db.preparedNames.subtracting(reset) { try db.executeScript("DEALLOCATE \(name)") }
        }
        try pool.withSession(.readWrite) { db in
            XCTAssertEqual(db.preparedNames, reset, "in step with the server, which keeps the reset's own")
            XCTAssertEqual(try db.execute("SELECT $1::text", ["b"], prepare: true).string(0, 0), "b")
        }
    }

    func testReadOnlySessionRefusesWritesAndLeavesNothingBehind() throws {
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        let clean = try state(try PGConnection(superuser))
        try pool.withSession(.readOnly) { db in
            XCTAssertThrowsError(try db.execute("CREATE TABLE it_read_only_probe (x int)")) { error in
                XCTAssertEqual((error as? PGError)?.sqlstate, "25006")
            }
        }
        try pool.withSession(.readOnly) { db in
            _ = try db.execute("SELECT set_config('role', 'it_poison', false), set_config('statement_timeout', '0', false)")
            XCTAssertEqual(try db.execute("SELECT current_user::text").string(0, 0), "it_poison")
        }
        for mode in [PGSessionMode.readOnly, .readWrite] {
            try pool.withSession(mode) { db in XCTAssertEqual(try state(db), clean) }
        }
        try pool.withSession(.readWrite) { db in
            try db.execute("CREATE TEMP TABLE written (x int)")
        }
    }

    func testPrimedReadOnlyTransactionIsReusedOnlyForReadOnly() throws {
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        try pool.withSession(.readOnly) { _ in }
        try pool.withSession(.readWrite) { db in
            try db.execute("CREATE TEMP TABLE after_read_only (x int)")
            XCTAssertEqual(try db.execute("SELECT current_setting('transaction_read_only')").string(0, 0), "off")
        }
        try pool.withSession(.readOnly) { db in
            XCTAssertEqual(try db.execute("SELECT current_setting('transaction_read_only')").string(0, 0), "on")
        }
    }
}
