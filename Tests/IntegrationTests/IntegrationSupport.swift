import Foundation
import XCTest

/// Integration tests run under `Tests/harness/stack.py exec`, which starts a throwaway PostgreSQL and
/// Redis and exports their addresses. Run alone (plain `swift test`), they are skipped with a reason.
enum IntegrationEnvironment {
    static var metadataDSN: String? { ProcessInfo.processInfo.environment["STACK_METADATA_DSN"] }
    static var superuserDSN: String? { ProcessInfo.processInfo.environment["STACK_SUPERUSER_DSN"] }
    static var redisSocket: String? { ProcessInfo.processInfo.environment["STACK_REDIS_SOCKET"] }

    static func require(_ value: String?, _ name: String) throws -> String {
        guard let value, !value.isEmpty else { throw XCTSkip("\(name) not set: run through Tests/harness/stack.py exec (make test)") }
        return value
    }

    /// The superuser's conninfo, with the role `it_poison` created: what the session-reset tests switch a
    /// pooled session to before checking it comes back clean.
    static func superuserWithPoisonRole() throws -> String {
        let superuser = try require(superuserDSN, "STACK_SUPERUSER_DSN")
        try PGConnection(superuser).executeScript("""
            DO $$ BEGIN CREATE ROLE it_poison NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$
            """)
        return superuser
    }
}

import Metadata
import Postgres

/// A fresh, migrated metadata database per test class, dropped afterwards.
final class TestDatabase {
    let name: String
    let conninfo: String
    private let admin: PGConnection

    init() throws {
        let superuser = try IntegrationEnvironment.require(IntegrationEnvironment.superuserDSN, "STACK_SUPERUSER_DSN")
        admin = try PGConnection(superuser)
        name = "it_\(UInt32.random(in: 0...UInt32.max))"
        try admin.execute("CREATE DATABASE \(try admin.quoteIdentifier(name))")
        var info = PGConnection.parseConninfo(superuser)!
        info["dbname"] = name
        conninfo = info.map { "\($0.key)='\($0.value)'" }.joined(separator: " ")
        try Migrator().migrate(try PGConnection(conninfo))
    }

    func drop() {
        _ = try? admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [name])
        _ = try? admin.execute("DROP DATABASE IF EXISTS \(try admin.quoteIdentifier(name))")
    }
}
