import Foundation
import Postgres
import XCTest

final class PostgresTests: XCTestCase {
    var dsn = ""
    var superuser = ""

    override func setUpWithError() throws {
        dsn = try IntegrationEnvironment.require(IntegrationEnvironment.metadataDSN, "STACK_METADATA_DSN")
        superuser = try IntegrationEnvironment.require(IntegrationEnvironment.superuserDSN, "STACK_SUPERUSER_DSN")
    }

    func testBoundParametersAreNeverSQL() throws {
        let c = try PGConnection(dsn)
        let hostile = "1'); DROP TABLE schema_migrations; --"
        let r = try c.execute("SELECT $1::text AS v, $2::int + 1 AS n", [hostile, "41"])
        XCTAssertEqual(r.string(0, 0), hostile)
        XCTAssertEqual(r.int(0, 1), 42)
        XCTAssertEqual(r.columnName(1), "n")
    }

    func testSeveralStatementsInOneRequestAreRefused() throws {
        let c = try PGConnection(dsn)
        XCTAssertThrowsError(try c.execute("SELECT 1; SELECT 2")) { error in
            XCTAssertEqual((error as? PGError)?.sqlstate, "42601")
        }
        XCTAssertEqual(try c.execute("SELECT 3").int(0, 0), 3, "connection stays usable")
    }

    func testQuoteIdentifierThroughLibpq() throws {
        let c = try PGConnection(dsn)
        XCTAssertEqual(try c.quoteIdentifier("we\"ird name"), "\"we\"\"ird name\"")
        let q = try c.quoteIdentifier("a\"; DROP TABLE x; --")
        XCTAssertEqual(try c.execute("SELECT 1 AS \(q)").columnName(0), "a\"; DROP TABLE x; --")
    }

    func testErrorsCarrySQLStateAndNoConnectionSecrets() throws {
        let c = try PGConnection(dsn)
        XCTAssertThrowsError(try c.execute("SELECT * FROM no_such_table")) { error in
            XCTAssertEqual((error as? PGError)?.sqlstate, "42P01")
        }
        XCTAssertThrowsError(try PGConnection("host=127.0.0.1 port=1 dbname=x user=u password=hunter2 connect_timeout=2")) { error in
            let e = error as? PGError
            XCTAssertEqual(e?.sqlstate, "08001")
            XCTAssertTrue(e?.connectionLost ?? false)
            XCTAssertFalse(e?.message.contains("hunter2") ?? true)
        }
    }

    func testDeadlineCancelsTheStatement() throws {
        let c = try PGConnection(dsn)
        let started = Date()
        XCTAssertThrowsError(try c.execute("SELECT pg_sleep(10)", watch: .init(deadline: Date().addingTimeInterval(0.3)))) { error in
            XCTAssertEqual((error as? PGError)?.sqlstate, "57014")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "cancelled long before pg_sleep ends")
        XCTAssertEqual(try c.execute("SELECT 1").int(0, 0), 1)
    }

    func testStreamingDeliversRowsOneByOneAndCanStop() throws {
        let c = try PGConnection(dsn)
        var rows = 0
        try c.stream("SELECT g FROM generate_series(1, 100000) g") { result in
            if result.rowCount == 1 { rows += 1 }
            return rows < 10
        }
        XCTAssertEqual(rows, 10)
        XCTAssertTrue(c.isIdle, "the cancelled statement was drained")
        XCTAssertEqual(try c.execute("SELECT 2").int(0, 0), 2)
    }

    func testPoolReplacesConnectionsTheServerHungUpOn() throws {
        let pool = PGPool(conninfo: dsn, size: 2)
        let pid = try pool.withConnection { try $0.execute("SELECT pg_backend_pid()").string(0, 0)! }
        let admin = try PGConnection(superuser)
        try admin.execute("SELECT pg_terminate_backend($1::int)", [pid])
        Thread.sleep(forTimeInterval: 0.2)
        // The first statement after the server dropped the connection must succeed.
        let newPid = try pool.withConnection { try $0.execute("SELECT pg_backend_pid()").string(0, 0)! }
        XCTAssertNotEqual(newPid, pid)
    }

    func testHasFreeConnectionSaysWhetherACheckoutWouldWait() throws {
        // Imports ask before taking a second session for optional parallel work; it must say no while
        // every connection is out, and yes again once one is back (idle) or may be opened.
        let pool = PGPool(conninfo: dsn, size: 2)
        XCTAssertTrue(pool.hasFreeConnection)
        let a = try pool.checkout()
        XCTAssertTrue(pool.hasFreeConnection)
        let b = try pool.checkout()
        XCTAssertFalse(pool.hasFreeConnection)
        pool.checkin(b)
        XCTAssertTrue(pool.hasFreeConnection)
        pool.checkin(a)
    }

    func testPreparedStatementsSurviveSchemaChange() throws {
        let c = try PGConnection(dsn)
        try c.execute("CREATE TEMP TABLE t (a int)")
        try c.execute("INSERT INTO t VALUES (1)")
        XCTAssertEqual(try c.execute("SELECT * FROM t", prepare: true).columnCount, 1)
        try c.execute("ALTER TABLE t ADD COLUMN b int")
        XCTAssertThrowsError(try c.execute("SELECT * FROM t", prepare: true)) { error in
            XCTAssertEqual((error as? PGError)?.sqlstate, "0A000", "cached plan must not change result type")
        }
    }

    func testConninfoParsing() {
        let parsed = PGConnection.parseConninfo("host=/run/pg port=5433 dbname='carto dw' user=u password=p")
        XCTAssertEqual(parsed?["dbname"], "carto dw")
        XCTAssertEqual(parsed?["port"], "5433")
        XCTAssertNil(PGConnection.parseConninfo("host='unterminated"))
    }
}
