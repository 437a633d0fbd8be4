import Foundation
import Postgres
import XCTest

/// `PGConnection.attempt`: a probe the caller can live without (the handshake's ST_EstimatedExtent) must
/// not abort the read-only transaction every Maps request runs in, or the next statement of the request
/// fails with "current transaction is aborted".
final class ProbeAttemptTests: XCTestCase {
    var superuser = ""

    override func setUpWithError() throws {
        superuser = try IntegrationEnvironment.require(IntegrationEnvironment.superuserDSN, "STACK_SUPERUSER_DSN")
    }

    func testARefusedProbeLeavesTheReadOnlyTransactionUsable() throws {
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        try pool.withSession(.readOnly) { db in
            XCTAssertFalse(db.isIdle, "read-only sessions run inside a transaction")
            try db.execute("SELECT set_config('tessera.before', 'kept', true)")
            XCTAssertNil(try db.attempt { try db.execute("SELECT 1 / 0") })
            XCTAssertEqual(try db.execute("SELECT current_setting('tessera.before')").string(0, 0), "kept",
                           "the transaction's earlier work survives the failed probe")
            XCTAssertEqual(try db.attempt { try db.execute("SELECT 41 + 1").int(0, 0) }, 42)
            XCTAssertEqual(try db.execute("SHOW transaction_read_only").string(0, 0), "on", "still the read-only transaction")
            XCTAssertNil(try db.attempt { try db.execute("CREATE TABLE it_attempt_refused (x int)") }, "writes stay refused")
            XCTAssertEqual(try db.execute("SELECT 7").int(0, 0), 7)
        }
        // Without the savepoint the same sequence fails: what the handshake hit.
        try pool.withSession(.readOnly) { db in
            XCTAssertThrowsError(try db.execute("SELECT 1 / 0"))
            XCTAssertThrowsError(try db.execute("SELECT 7")) { error in
                XCTAssertEqual((error as? PGError)?.sqlstate, "25P02")
            }
        }
    }

    func testOutsideATransactionAProbeNeedsNoSavepoint() throws {
        let db = try PGConnection(superuser)
        XCTAssertNil(try db.attempt { try db.execute("SELECT 1 / 0") })
        XCTAssertTrue(db.isIdle)
        XCTAssertEqual(try db.attempt { try db.execute("SELECT 3").int(0, 0) }, 3)
    }

    func testACancelledProbeIsNotSwallowed() throws {
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        try pool.withSession(.readOnly) { db in
            let soon = PGConnection.Watch(deadline: Date(timeIntervalSinceNow: 0.2))
            XCTAssertThrowsError(try db.attempt { try db.execute("SELECT pg_sleep(30)", watch: soon) }) { error in
                XCTAssertEqual((error as? PGError)?.sqlstate, "57014", "a deadline ends the request, not just the probe")
            }
            XCTAssertEqual(try db.execute("SELECT 5").int(0, 0), 5, "the transaction was rolled back to before the probe")
        }
    }
}

/// `PGPassFile`: osm2pgrouting builds its own conninfo with an explicit, empty `password=`, which overrides
/// PGPASSWORD; libpq still reads the password file then. carto_dw needs its password over TCP (scram).
final class ToolPasswordFileTests: XCTestCase {
    func testAnExplicitEmptyPasswordStillFindsThePasswordFile() throws {
        let dsn = try IntegrationEnvironment.require(ProcessInfo.processInfo.environment["STACK_WAREHOUSE_DSN"], "STACK_WAREHOUSE_DSN")
        var info = try XCTUnwrap(PGConnection.parseConninfo(dsn))
        let password = try XCTUnwrap(info.removeValue(forKey: "password"), "the warehouse DSN carries carto_dw's password")
        let base = ["host", "port", "dbname", "user"].compactMap { k in info[k].map { "\(k)='\($0)'" } }.joined(separator: " ")
            + " password='' connect_timeout=5"
        XCTAssertThrowsError(try PGConnection(base + " passfile='/dev/null'"), "without the file the server refuses the login")
        let file = try PGPassFile(password: password)
        defer { file.remove() }
        let attrs = try FileManager.default.attributesOfItem(atPath: file.path)
        XCTAssertEqual((attrs[.posixPermissions] as? NSNumber)?.intValue, 0o600, "libpq ignores a password file others can read")
        let db = try PGConnection(base + " passfile='\(file.path)'")
        XCTAssertEqual(try db.execute("SELECT current_user::text").string(0, 0), info["user"])
        file.remove()
        XCTAssertFalse(FileManager.default.fileExists(atPath: file.directory))
    }

    func testSeparatorsInThePasswordAreEscaped() throws {
        let file = try PGPassFile(password: #"a:b\c"#)
        defer { file.remove() }
        XCTAssertEqual(try String(contentsOfFile: file.path, encoding: .utf8), #"*:*:*:*:a\:b\\c"# + "\n")
    }
}
