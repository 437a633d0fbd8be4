import Foundation
import Postgres
import XCTest

/// The session reset runs prepared statements under reserved names (`tessera_reset_*`), which a client's SQL
/// can deallocate, or deallocate and `PREPARE` again as something else. Whatever it does to them, the pool
/// closes that connection instead of trusting its reset, so nothing the client left (an advisory lock, a
/// setting) reaches the next checkout; the pool keeps working on a new connection.
final class PooledResetHijackTests: XCTestCase {
    var superuser = ""

    override func setUpWithError() throws {
        superuser = try IntegrationEnvironment.superuserWithPoisonRole()
    }

    static let lock = 4246

    /// Replaces `name` with a SELECT, in one statement (as one request's SQL could).
    static func replace(_ name: String, with select: String = "SELECT 1") -> String {
        "DO $$ BEGIN EXECUTE 'DEALLOCATE \(name)'; EXECUTE 'PREPARE \(name) AS \(select)'; END $$"
    }

    /// Each way of taking over the reset's statements: the unlock and the stamp check are SELECTs a client can
    /// put in their place (only the listing tells), the others answer with a command tag no SELECT has.
    static let hijacks = [
        "DEALLOCATE tessera_reset_locks",
        "DEALLOCATE tessera_reset_check_stamp",
        "DEALLOCATE ALL",
        replace("tessera_reset_locks"),
        replace("tessera_reset_check_stamp"),
        replace("tessera_reset_stamp", with: "SELECT now()::text"),
        replace("tessera_reset_settings"),
        replace("tessera_reset_rollback"),
        replace("tessera_reset_begin_read_only"),
    ]

    func state(_ db: PGConnection) throws -> [String?] {
        let r = try db.execute(PooledSessionResetTests.probe)
        return (0..<r.columnCount).map { r.string(0, $0) }
    }

    func testAReplacedOrRemovedResetStatementClosesTheConnection() throws {
        let clean = try state(try PGConnection(superuser))
        for mode in [PGSessionMode.readOnly, .readWrite] {
            for hint in [true, false] {
                for hijack in Self.hijacks {
                    let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
                    pool.maxPrimedAge = 3600
                    var pid: String?
                    try pool.withSession(mode) { db in
                        pid = try db.execute("SELECT pg_backend_pid()::text").string(0, 0)
                        try db.execute("SELECT pg_advisory_lock(\(Self.lock)), set_config('work_mem', '7MB', false)")
                        // The reset sent behind the hijack (hint), or at check-in.
                        try db.execute(hijack, lastOfCheckout: hint)
                    }
                    let what = "\(mode), hint \(hint): \(hijack)"
                    try pool.withSession(mode) { db in
                        XCTAssertNotEqual(try db.execute("SELECT pg_backend_pid()::text").string(0, 0), pid, "\(what): closed")
                        XCTAssertEqual(try state(db), clean, what)
                        XCTAssertEqual(try db.execute("SELECT $1::int + 1", ["1"], prepare: true).int(0, 0), 2, what)
                    }
                    try pool.withSession(mode) { db in
                        XCTAssertEqual(try state(db), clean, "\(what): the new connection resets as usual")
                    }
                    // The closed session's lock goes with its backend, which exits once it reads the hang-up.
                    let other = try PGConnection(superuser)
                    try other.execute("SET lock_timeout = '60s'")
                    XCTAssertNoThrow(try other.execute("SELECT pg_advisory_lock(\(Self.lock))"), "\(what): the lock was dropped")
                }
            }
        }
    }

    /// Why the listing runs at every reset, also behind statements the server built (tiles) and not only behind
    /// SQL API text: reading a relation can run its owner's code. Here a prepared SELECT of a view, inside the
    /// pool's READ ONLY transaction, replaces the unlock, takes a lock and leaves a stray statement.
    func testAViewsFunctionCannotHijackTheResetOfAPlainSelect() throws {
        let clean = try state(try PGConnection(superuser))
        let owner = try PGConnection(superuser)
        try owner.executeScript("""
            CREATE OR REPLACE FUNCTION it_hijacking_read() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN
                IF EXISTS (SELECT FROM pg_prepared_statements WHERE name = 'tessera_reset_locks' AND NOT from_sql) THEN
                    EXECUTE 'DEALLOCATE tessera_reset_locks';
                    EXECUTE 'PREPARE tessera_reset_locks AS SELECT 1';
                END IF;
                PERFORM pg_advisory_lock(\(Self.lock));
                RETURN 1;
            END $$;
            CREATE OR REPLACE VIEW it_hijacking_view AS SELECT it_hijacking_read() AS x;
            """)
        defer { try? owner.executeScript("DROP VIEW it_hijacking_view; DROP FUNCTION it_hijacking_read()") }
        for mode in [PGSessionMode.readOnly, .readWrite] {
            for hint in [true, false] {
                let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
                pool.maxPrimedAge = 3600
                var pid: String?
                try pool.withSession(mode) { db in
                    pid = try db.execute("SELECT pg_backend_pid()::text").string(0, 0)
                    try db.execute("SELECT x FROM it_hijacking_view", prepare: true, lastOfCheckout: hint)
                }
                let what = "\(mode), hint \(hint)"
                try pool.withSession(mode) { db in
                    XCTAssertNotEqual(try db.execute("SELECT pg_backend_pid()::text").string(0, 0), pid, "\(what): closed")
                    XCTAssertEqual(try state(db), clean, what)
                }
                let other = try PGConnection(superuser)
                try other.execute("SET lock_timeout = '60s'")
                XCTAssertNoThrow(try other.execute("SELECT pg_advisory_lock(\(Self.lock))"), "\(what): the lock was dropped")
            }
        }
    }

    /// The short reset's check runs under the client's `search_path` (before its ROLLBACK): a schema put before
    /// `pg_catalog` must not lend it another `pg_advisory_unlock_all`.
    func testTheShortResetIgnoresASearchPathThatShadowsTheCatalog() throws {
        let clean = try state(try PGConnection(superuser))
        let owner = try PGConnection(superuser)
        try owner.executeScript("""
            CREATE SCHEMA IF NOT EXISTS it_shadow;
            CREATE OR REPLACE FUNCTION it_shadow.pg_advisory_unlock_all() RETURNS void LANGUAGE sql AS '';
            """)
        defer { try? owner.executeScript("DROP SCHEMA it_shadow CASCADE") }
        for hint in [true, false] {
            let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
            pool.maxPrimedAge = 3600
            var pid: String?
            var shortResets = 0
            try pool.withSession(.readOnly) { db in
                pid = try db.execute("SELECT pg_backend_pid()::text").string(0, 0)
                shortResets = db.resets.readOnly
                try db.executeScript("SET search_path = it_shadow, pg_catalog")
                try db.execute("SELECT pg_advisory_lock(\(Self.lock))", lastOfCheckout: hint)
            }
            try pool.withSession(.readOnly) { db in
                XCTAssertEqual(try db.execute("SELECT pg_backend_pid()::text").string(0, 0), pid, "hint \(hint)")
                XCTAssertEqual(db.resets.readOnly, shortResets + 1, "hint \(hint): the short reset")
                XCTAssertEqual(try state(db), clean, "hint \(hint)")
            }
        }
    }

    func testTheBookkeepingsOwnDeallocateAllPreparesTheResetAgain() throws {
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        var pid: String?
        try pool.withSession(.readWrite) { db in
            pid = try db.execute("SELECT pg_backend_pid()::text").string(0, 0)
            // More statements than the bookkeeping keeps: it deallocates all of them once.
            for i in 0..<260 { _ = try db.execute("SELECT $1::int + \(i)", ["1"], prepare: true) }
        }
        for mode in [PGSessionMode.readOnly, .readWrite, .readOnly] {
            try pool.withSession(mode) { db in
                XCTAssertEqual(try db.execute("SELECT pg_backend_pid()::text").string(0, 0), pid, "\(mode): still the same connection")
                let held = try db.execute("SELECT name FROM pg_prepared_statements WHERE NOT from_sql")
                XCTAssertEqual(Set((0..<held.rowCount).compactMap { held.string($0, 0) }), db.preparedNames, "\(mode)")
                XCTAssertTrue(db.preparedNames.contains("tessera_reset_locks"), "\(mode)")
            }
        }
    }
}
