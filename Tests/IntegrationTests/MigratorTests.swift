import Metadata
import Postgres
import XCTest

final class MigratorTests: XCTestCase {
    func testMigrationsApplyOnceAndAreTransactional() throws {
        let superuser = try IntegrationEnvironment.require(IntegrationEnvironment.superuserDSN, "STACK_SUPERUSER_DSN")
        let admin = try PGConnection(superuser)
        let name = "migrate_test_\(UInt32.random(in: 0...UInt32.max))"
        try admin.execute("CREATE DATABASE \(try admin.quoteIdentifier(name))")
        defer { _ = try? admin.execute("DROP DATABASE \(try admin.quoteIdentifier(name))") }
        var info = PGConnection.parseConninfo(superuser)!
        info["dbname"] = name
        let c = try PGConnection(info.map { "\($0.key)='\($0.value)'" }.joined(separator: " "))

        let migrator = try Migrator()
        XCTAssertGreaterThan(migrator.latestVersion, 0)
        XCTAssertEqual(try migrator.migrate(c).count, migrator.migrations.count)
        XCTAssertEqual(try migrator.migrate(c), [], "second run is a no-op")
        XCTAssertEqual(try migrator.currentVersion(c), migrator.latestVersion)
        for table in ["accounts", "users", "sessions", "connections", "api_tokens", "oauth_clients", "audit_log"] {
            XCTAssertEqual(try c.execute("SELECT to_regclass($1) IS NOT NULL", [table]).bool(0, 0), true, table)
        }

        // A failing migration leaves nothing behind.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "CREATE TABLE half_done (a int); SELECT no_such_function();".write(
            to: dir.appendingPathComponent("999_broken.sql"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Migrator(directory: dir).migrate(c))
        XCTAssertEqual(try c.execute("SELECT to_regclass('half_done') IS NULL").bool(0, 0), true)
        XCTAssertEqual(try c.execute("SELECT count(*) FROM schema_migrations WHERE version = 999").int(0, 0), 0)
    }
}
