import Config
import CryptoSupport
import Foundation
import HTTPKit
import Platform
import Postgres

/// `tessera selftest`: one real use of every program, through nginx as a user would, for an operator
/// after an install or upgrade (and the install test). It touches no user data: it works in an
/// organisation and a warehouse schema of its own, created here and removed at the end whatever happened.
/// Geocoding and routing use the installation's gazetteer and road graph when they are loaded
/// (skipped otherwise); a URL import needs a URL the import allow-list lets through (--import-url).
func selftest(_ cli: inout CommandLineArguments, _ config: TesseraConfig) throws {
    let base = cli.take("--base-url") ?? "https://127.0.0.1"
    let fixtures = cli.take("--fixtures") ?? "/usr/share/tessera/selftest"
    let importURL = cli.take("--import-url")
    let keep = cli.flags.contains("--keep")
    try cli.finish()
    let run = try SelftestRun(config: config, base: base, fixtures: fixtures)
    defer { if !keep { run.teardown() } }
    try run.setUp()
    run.all(importURL: importURL)
    print("selftest: \(run.passed) passed, \(run.failed) failed, \(run.skipped) skipped")
    if run.failed > 0 { throw CLIError(message: "selftest failed", code: 1) }
}

final class SelftestRun {
    let config: TesseraConfig
    let services: Services
    let fixtures: String
    let tag = "tessera_selftest_" + Encoding.hex(Crypto.randomBytes(4))
    var http: SelftestHTTP
    var passed = 0, failed = 0, skipped = 0
    var accountId: String?
    var admin: AccountStore.User?
    let password = "Selftest-" + Encoding.hex(Crypto.randomBytes(12))
    /// An API token (sql, maps, imports, lds) and the admin's OAuth token (workspace, writes).
    var token = "", oauth = ""
    var schema: String { tag }
    var email: String { "\(tag.replacingOccurrences(of: "_", with: "-"))@example.com" }

    init(config: TesseraConfig, base: String, fixtures: String) throws {
        self.config = config
        services = try Services(config: config)
        self.fixtures = fixtures
        let dir = NSTemporaryDirectory() + "tessera-selftest-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        http = SelftestHTTP(base: base, dir: dir)
    }

    // MARK: set-up and teardown

    func setUp() throws {
        guard !config.warehouseURL.isEmpty, PGConnection.parseConninfo(config.warehouseURL) != nil else {
            throw CLIError(message: "selftest needs TESSERA_WAREHOUSE_URL (the embedded warehouse)")
        }
        let accounts = AccountStore(services.metadata)
        guard let user = try accounts.createOrganization(name: tag, email: email, passwordHash: try PasswordHasher.hash(password)) else {
            throw CLIError(message: "could not create the selftest organisation")
        }
        admin = user
        accountId = user.accountId
        // The embedded warehouse as the platform registers it (the connection policy refuses its role to
        // any record a user could make); the selftest's schema keeps its tables apart and is dropped after.
        try registerEmbeddedWarehouse(services, accountId: user.accountId, userId: user.id)
        let record = try TokenStore(services.metadata).create(
            account: user.accountId, createdBy: user.id, grants: [Grant(connectionName: "carto_dw", source: "*")], referers: [],
            allowedAPIs: ["sql", "maps", "imports", "lds"], expiresAt: Date().addingTimeInterval(3600))
        token = services.auth.apiTokenString(account: user.accountId, id: record.id)
        try warehouse { try $0.execute("CREATE SCHEMA \(try $0.quoteIdentifier(schema))") }
        print("selftest: organisation and warehouse schema \(tag) (removed at the end)")
        fflush(nil)
    }

    func teardown() {
        do {
            try warehouse { db in
                try db.execute("SET client_min_messages = warning")
                try db.execute("DROP SCHEMA IF EXISTS \(try db.quoteIdentifier(schema)) CASCADE")
            }
            if let accountId {
                // Deleting users, tokens and connections queues cache purges (migration 004's triggers) as jobs
                // of the organisation: those go too, then the organisation with all else (ON DELETE CASCADE).
                try services.metadata.transaction { db in
                    for table in ["users", "api_tokens", "connections", "jobs"] {
                        _ = try db.execute("DELETE FROM \(table) WHERE account_id = $1", [accountId])
                    }
                    _ = try db.execute("DELETE FROM accounts WHERE id = $1", [accountId])
                }
            }
            print("selftest: removed \(tag)")
        } catch {
            print("selftest: could not remove \(tag): \(error)")
            failed += 1
        }
        try? FileManager.default.removeItem(atPath: http.dir)
    }

    @discardableResult
    func warehouse<T>(_ body: (PGConnection) throws -> T) throws -> T {
        let c = try PGConnection(config.warehouseURL)
        return try body(c)
    }

    // MARK: running checks

    /// One line per check: `ok`, `FAIL` or `skip`, its name and what it saw.
    func check(_ name: String, _ body: () throws -> String) {
        let started = Date()
        do {
            let detail = try body()
            passed += 1
            print("ok    \(padded(name)) \(detail) (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
        } catch let skip as SelftestSkip {
            skipped += 1
            print("skip  \(padded(name)) \(skip.reason)")
        } catch {
            failed += 1
            print("FAIL  \(padded(name)) \(error)")
        }
        // One line per check as it happens, also when the output is a pipe (the install test's log).
        fflush(nil)
    }

    private func padded(_ name: String) -> String { name.count >= 22 ? name : name.padding(toLength: 22, withPad: " ", startingAt: 0) }

    /// Polls `probe` until it gives a value, for at most `seconds`.
    func wait<T>(_ what: String, seconds: Double = 120, _ probe: () throws -> T?) throws -> T {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let value = try probe() { return value }
            if Date() > deadline { throw SelftestFailure("\(what): not within \(Int(seconds)) s") }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    func expect(_ r: SelftestHTTP.Response, _ status: Int, _ what: String) throws -> JSON {
        guard r.status == status else { throw SelftestFailure("\(what): HTTP \(r.status) \(r.text)") }
        return r.json ?? .null
    }

    /// The first row of a query through the SQL API.
    func sql(_ q: String, token: String? = nil) throws -> JSON {
        let r = try http.request("GET", "/api/v3/sql/carto_dw/query?" + SelftestHTTP.query([("q", q)]), token: token ?? self.token)
        return try expect(r, 200, "SQL API")["rows"]?.arrayValue?.first ?? .null
    }

    func write(_ q: String) throws {
        _ = try expect(try http.request("POST", "/api/v3/sql/carto_dw/query", token: oauth, json: ["q": .string(q)]), 200, "SQL API write")
    }

    func count(_ table: String) throws -> Int {
        try sql("SELECT count(*)::int AS n FROM \(schema).\(table)")["n"]?.intValue ?? -1
    }

    func fixture(_ name: String) throws -> String {
        let path = "\(fixtures)/\(name)"
        guard FileManager.default.isReadableFile(atPath: path) else { throw SelftestFailure("fixture \(path) missing (tessera-common ships it)") }
        return path
    }
}
