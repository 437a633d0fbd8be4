import Foundation
import Postgres
import XCTest

/// A pooled read costs the client one round trip (its statement); the reset at check-in, whatever the
/// request left behind, is one more, sent as a pipeline after the response.
final class PooledSessionRoundTripTests: XCTestCase {
    var superuser = ""

    override func setUpWithError() throws {
        superuser = try IntegrationEnvironment.require(IntegrationEnvironment.superuserDSN, "STACK_SUPERUSER_DSN")
    }

    func testAReadIsOneRoundTripAndTheResetOneMoreInEachMode() throws {
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        // A primed READ ONLY transaction is reused however slow this machine is.
        pool.maxPrimedAge = 3600
        for mode in [PGSessionMode.readOnly, .readWrite, .readOnly] {
            // Warm: the statement is prepared and the connection primed for `mode` at check-in.
            try pool.withSession(mode) { db in _ = try db.execute("SELECT $1::int", ["1"], prepare: true) }
            var afterRead = 0
            try pool.withSession(mode) { db in
                let atCheckout = db.roundTrips
                XCTAssertEqual(try db.execute("SELECT $1::int", ["2"], prepare: true).int(0, 0), 2)
                afterRead = db.roundTrips
                XCTAssertEqual(afterRead - atCheckout, 1, "\(mode): the read is the request's only round trip")
            }
            // Size 1: this checkout waits until the background reset has made the connection idle again.
            try pool.withSession(mode) { db in
                XCTAssertEqual(db.roundTrips - afterRead, 1, "\(mode): rollback, reset and priming go out as one pipeline")
                XCTAssertEqual(db.sessionMode, mode)
            }
        }
    }

    func testADirtySessionIsStillResetInOneRoundTrip() throws {
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        var afterRequest = 0
        try pool.withSession(.readWrite) { db in
            try db.executeScript("BEGIN")
            try db.executeScript("SET LOCAL work_mem = '7MB'")
            try db.executeScript("SELECT set_config('application_name', 'poisoned', false), pg_advisory_lock(4243)")
            afterRequest = db.roundTrips
        }
        try pool.withSession(.readWrite) { db in
            XCTAssertEqual(db.roundTrips - afterRequest, 1, "left mid-transaction: the rollback joins the reset's pipeline")
            let r = try db.execute("""
                SELECT current_setting('application_name') <> 'poisoned', current_setting('work_mem') <> '7MB',
                       (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) = 0
                """)
            XCTAssertEqual((0..<3).map { r.bool(0, $0) }, [true, true, true])
            XCTAssertTrue(db.isIdle)
        }
    }
}
