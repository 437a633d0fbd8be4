import Foundation
import Postgres
import XCTest

/// The check-in reset pipelined behind a checkout's last statement (`PGConnection+ResetBehind`), against the
/// real server: whatever that statement left behind is gone for the next checkout, exactly as with the reset
/// at check-in, and every case the pipelined reset cannot vouch for falls back to that reset.
final class PooledResetBehindTests: XCTestCase {
    var superuser = ""

    override func setUpWithError() throws {
        superuser = try IntegrationEnvironment.superuserWithPoisonRole()
    }

    func state(_ db: PGConnection) throws -> [String?] {
        let r = try db.execute(PooledSessionResetTests.probe)
        return (0..<r.columnCount).map { r.string(0, $0) }
    }

    func total(_ db: PGConnection) -> Int { db.resets.readOnly + db.resets.full }

    /// What one request's last statement can leave on a session (one statement per checkout).
    static let poison = [
        "SET work_mem = '7MB'", "SET search_path = pg_temp, public", "SET statement_timeout = 1234",
        "SELECT set_config('tessera.poison', 'yes', false)", "SELECT pg_advisory_lock(4245)",
        "PREPARE poison_stmt AS SELECT 1", "DECLARE poison_cursor CURSOR WITH HOLD FOR SELECT 1",
        "LISTEN poison_channel", "SET ROLE it_poison", "SET SESSION AUTHORIZATION it_poison",
    ]

    func testEachLastStatementsLeftoversAreGoneAndTheResetRanInItsRoundTrip() throws {
        let clean = try state(try PGConnection(superuser))
        for mode in [PGSessionMode.readOnly, .readWrite] {
            let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
            pool.maxPrimedAge = 3600
            for statement in Self.poison {
                var resets = 0, trips = 0
                try pool.withSession(mode) { db in
                    resets = total(db)
                    try db.execute(statement, lastOfCheckout: true)
                    trips = db.roundTrips
                }
                try pool.withSession(mode) { db in
                    XCTAssertEqual(total(db), resets + 1, "\(mode) \(statement): one reset, the one behind the statement")
                    // A stray SQL-level PREPARE costs its DEALLOCATE afterwards, as at check-in.
                    if !statement.hasPrefix("PREPARE") {
                        XCTAssertEqual(db.roundTrips, trips, "\(mode) \(statement): no round trip of its own")
                    }
                    XCTAssertEqual(try state(db), clean, "\(mode) after \(statement)")
                }
            }
            XCTAssertEqual(try PGConnection(superuser).execute("SELECT pg_try_advisory_lock(4245)").bool(0, 0), true,
                           "\(mode): the session-level advisory lock was released")
        }
    }

    func testWhatThePipelinedResetCannotVouchForGetsTheResetAtCheckin() throws {
        let clean = try state(try PGConnection(superuser))
        let cases: [(PGSessionMode, String, String?)] = [
            (.readOnly, "SELECT 1 / 0", "22012"),               // aborts the pool's transaction: the check fails
            (.readOnly, "COMMIT", nil),                         // ends the pool's transaction
            (.readWrite, "BEGIN", nil),                          // leaves a transaction open
        ]
        for (mode, statement, sqlstate) in cases {
            let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
            pool.maxPrimedAge = 3600
            var trips = 0
            try pool.withSession(mode) { db in
                try db.execute("SET work_mem = '9MB'")
                do {
                    try db.execute(statement, lastOfCheckout: true)
                    XCTAssertNil(sqlstate, statement)
                } catch let e as PGError {
                    XCTAssertEqual(e.sqlstate, sqlstate, statement)
                }
                XCTAssertTrue(db.isHealthy)
                trips = db.roundTrips
            }
            try pool.withSession(mode) { db in
                XCTAssertGreaterThan(db.roundTrips, trips, "\(mode) \(statement): the check-in reset ran")
                XCTAssertEqual(try state(db), clean, "\(mode) after \(statement)")
            }
        }
    }

    func testAStatementAfterTheHintDirtiesTheSessionAgain() throws {
        let clean = try state(try PGConnection(superuser))
        for mode in [PGSessionMode.readOnly, .readWrite] {
            let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
            try pool.withSession(mode) { db in
                try db.execute("SELECT 1", lastOfCheckout: true)
                try db.execute("SELECT set_config('tessera.poison', 'late', false)")
            }
            try pool.withSession(mode) { db in XCTAssertEqual(try state(db), clean, "\(mode)") }
        }
    }

    func testAFailedReadWriteStatementStillResetsBehindIt() throws {
        let clean = try state(try PGConnection(superuser))
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        try pool.withSession(.readWrite) { db in
            try db.execute("SELECT set_config('tessera.poison', 'yes', false)")
            let resets = total(db)
            XCTAssertThrowsError(try db.execute("SELECT 1 / 0", lastOfCheckout: true)) { error in
                XCTAssertEqual((error as? PGError)?.sqlstate, "22012")
            }
            // Read at once after an error (the caller may retry on the connection).
            XCTAssertEqual(total(db), resets + 1, "an autocommit error leaves no transaction: the reset after it holds")
        }
        try pool.withSession(.readWrite) { db in XCTAssertEqual(try state(db), clean) }
    }

    func testStreamingStaysOneRowPerResultAndAnEarlyStopLeavesACleanSession() throws {
        let clean = try state(try PGConnection(superuser))
        for mode in [PGSessionMode.readOnly, .readWrite] {
            let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
            try pool.withSession(mode) { db in
                var rows = 0, largest = 0
                try db.stream("SELECT g FROM generate_series(1, 5000) g", prepare: true, lastOfCheckout: true) { result in
                    rows += result.rowCount
                    largest = max(largest, result.rowCount)
                    return true
                }
                XCTAssertEqual(rows, 5000, "\(mode)")
                XCTAssertEqual(largest, 1, "\(mode): single-row mode held in pipeline mode (memory stays flat)")
            }
            try pool.withSession(mode) { db in
                try db.execute("SELECT set_config('tessera.poison', 'yes', false)")
                var rows = 0
                // Stops after 10 rows of a long statement: cancelled, drained, and the reset behind it either ran
                // or was cancelled with it (then the check-in reset runs).
                try db.stream("SELECT g FROM generate_series(1, 1000000) g", lastOfCheckout: true) { result in
                    rows += result.rowCount
                    return rows < 10
                }
                XCTAssertEqual(rows, 10, "\(mode)")
            }
            try pool.withSession(mode) { db in XCTAssertEqual(try state(db), clean, "\(mode) after an early stop") }
        }
    }
}
