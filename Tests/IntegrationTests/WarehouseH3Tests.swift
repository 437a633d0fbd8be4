import HTTPKit
import Platform
import Postgres
import XCTest

/// tessera_h3 in a user's warehouse as warehouse-migrate installs it: by the database owner (a
/// trusted extension), skipped with a reason where the role may not, and the 400s an H3 request
/// gets. Needs `make build` (or packaging/h3/build-ext --install) to have put the extension on the server.
final class WarehouseH3Tests: XCTestCase {
    private var admin: PGConnection!
    private var superuserInfo: [String: String] = [:]
    private var databases: [String] = []
    private var roles: [String] = []

    override func setUpWithError() throws {
        let superuser = try IntegrationEnvironment.require(IntegrationEnvironment.superuserDSN, "STACK_SUPERUSER_DSN")
        admin = try PGConnection(superuser)
        superuserInfo = PGConnection.parseConninfo(superuser)!
        guard try admin.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'tessera_h3'").rowCount == 1 else {
            return XCTFail("tessera_h3 is not installed on this PostgreSQL: run `make build` (packaging/h3/build-ext --install)")
        }
    }

    override func tearDown() {
        for db in databases {
            _ = try? admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [db])
            _ = try? admin.execute("DROP DATABASE IF EXISTS \(try admin.quoteIdentifier(db))")
        }
        for role in roles { _ = try? admin.execute("DROP ROLE IF EXISTS \(try admin.quoteIdentifier(role))") }
    }

    /// A new database owned by `owner` (a new login role), with PostGIS if asked; returns a connection as `user`.
    private func warehouse(postgis: Bool, connectAs user: String? = nil) throws -> (PGConnection, String) {
        let suffix = UInt32.random(in: 0...UInt32.max)
        let (db, owner) = ("h3_it_\(suffix)", "h3_owner_\(suffix)")
        try admin.execute("CREATE ROLE \(owner) LOGIN")
        roles.append(owner)
        try admin.execute("CREATE DATABASE \(db) OWNER \(owner)")
        databases.append(db)
        var info = superuserInfo
        info["dbname"] = db
        if postgis { try PGConnection(conninfo(info)).execute("CREATE EXTENSION postgis") }
        info["user"] = user ?? owner
        return (try PGConnection(conninfo(info)), owner)
    }

    private func conninfo(_ info: [String: String]) -> String {
        info.map { "\($0.key)='\($0.value)'" }.joined(separator: " ")
    }

    func testOwnerInstallsItAndRequireThenPasses() throws {
        let (db, _) = try warehouse(postgis: true)
        XCTAssertFalse(try WarehouseH3.isInstalled(db))
        XCTAssertThrowsError(try WarehouseH3.require(db)) { error in
            let e = error as? APIError
            XCTAssertEqual(e?.status, 400)
            XCTAssertEqual(e?.code, "h3_unavailable")
            XCTAssertTrue(e?.message.contains("postgresql-15-tessera-h3") == true, e?.message ?? "")
        }
        XCTAssertEqual(try WarehouseH3.install(db), "tessera_h3 1.0")
        XCTAssertNoThrow(try WarehouseH3.require(db))
        XCTAssertEqual(try WarehouseH3.install(db), "tessera_h3 1.0", "installing again changes nothing")
        XCTAssertEqual(try db.execute("SELECT carto.h3_fromlonglat(-122.4194, 37.7749, 9)").string(0, 0), "89283082803ffff")
    }

    func testPastTheCellBoundIsA400() throws {
        let (db, _) = try warehouse(postgis: true)
        _ = try WarehouseH3.install(db)
        XCTAssertThrowsError(try db.execute(
            "SELECT carto.h3_polyfill(ST_MakeEnvelope(-10, -10, 10, 10, 4326), 8, 5000)")) { error in
            let e = error as? PGError
            XCTAssertEqual(e?.sqlstate, WarehouseH3.tooManyCellsSQLState)
            XCTAssertTrue(e?.message.contains("more than 5000 cells") == true, e?.message ?? "")
            XCTAssertEqual(SQLStateStatus.map(e?.sqlstate).status, 400)
            XCTAssertEqual(SQLStateStatus.map(e?.sqlstate).code, "h3_too_many_cells")
        }
    }

    func testARoleThatMayNotCreateExtensionsIsSkippedWithAReason() throws {
        let suffix = UInt32.random(in: 0...UInt32.max)
        let reader = "h3_reader_\(suffix)"
        try admin.execute("CREATE ROLE \(reader) LOGIN")
        roles.append(reader)
        let (db, _) = try warehouse(postgis: true, connectAs: reader)
        let outcome = try WarehouseH3.install(db)
        XCTAssertTrue(outcome.hasPrefix("tessera_h3 skipped (this role may not create extensions"), outcome)
        XCTAssertFalse(try WarehouseH3.isInstalled(db))
    }

    func testAWarehouseWithoutPostGISIsSkippedWithAReason() throws {
        let (db, _) = try warehouse(postgis: false)
        let outcome = try WarehouseH3.install(db)
        XCTAssertTrue(outcome.hasPrefix("tessera_h3 skipped (it needs PostGIS"), outcome)
    }
}
