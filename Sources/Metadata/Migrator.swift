import Foundation
import Observability
import Postgres

/// Applies the versioned SQL files in `migrations/` (named `NNN_name.sql`) in order, each in its own
/// transaction, under an advisory lock so concurrent `tessera migrate` runs (several VMs) are safe.
public struct Migrator {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let sql: String
    }

    public let migrations: [Migration]

    public init(directory: URL? = nil) throws {
        let dir = directory ?? Bundle.module.url(forResource: "migrations", withExtension: nil)!
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sql") }.sorted()
        migrations = try files.map { file in
            guard let version = Int(file.prefix { $0.isNumber }) else {
                throw PGError(sqlstate: nil, message: "migration file \(file) does not start with a version number")
            }
            let sql = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            return Migration(version: version, name: String(file.dropLast(4)), sql: sql)
        }
    }

    public var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Applies pending migrations; returns the names applied.
    @discardableResult
    public func migrate(_ connection: PGConnection) throws -> [String] {
        try connection.execute("SELECT pg_advisory_lock(7263541)")
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock(7263541)") }
        try connection.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
            """)
        let done = try connection.execute("SELECT version FROM schema_migrations")
        let applied = Set((0..<done.rowCount).compactMap { done.int($0, 0) })
        var names: [String] = []
        for migration in migrations where !applied.contains(migration.version) {
            try connection.execute("BEGIN")
            do {
                try connection.executeScript(migration.sql)
                try connection.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                       [String(migration.version), migration.name])
                try connection.execute("COMMIT")
            } catch {
                _ = try? connection.execute("ROLLBACK")
                throw error
            }
            Log.info("migration_applied", [("name", migration.name)])
            names.append(migration.name)
        }
        return names
    }

    /// The schema version recorded in the database (0 when never migrated).
    public func currentVersion(_ connection: PGConnection) throws -> Int {
        let r = try connection.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
        return r.int(0, 0) ?? 0
    }

    /// The line `tessera migrate` prints (and logs) when migration 011 ran: what the isolation upgrade
    /// changed on this install, so an operator sees tokens revoked and maps whose visibility changed.
    public static func isolationUpgradeReport(_ connection: PGConnection, applied: [String]) throws -> String? {
        guard applied.contains(where: { $0.hasPrefix("011_") }) else { return nil }
        let r = try connection.execute("""
            SELECT details::text FROM audit_log WHERE action = 'upgrade_011_isolation' ORDER BY id DESC LIMIT 1
            """)
        guard let text = r.string(0, 0), let data = text.data(using: .utf8),
              let d = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        func n(_ key: String) -> Int { (d[key] as? NSNumber)?.intValue ?? 0 }
        let line = "isolation upgrade: \(n("tokens_revoked")) API token(s) and \(n("oauth_clients_revoked")) OAuth client(s) "
            + "of removed users revoked; \(n("maps_to_organization")) \"Private\" map(s) are now \"organization\" (visible to "
            + "the organisation as before); \(n("wildcard_maps")) map(s) with a * dataset refused until edited "
            + "(\(n("wildcard_maps_unpublished")) made non-public)"
        Log.info("isolation_upgrade", [("report", line)])
        return line
    }
}
