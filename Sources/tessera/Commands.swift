import Config
import Foundation
import HTTPKit
import Jobs
import MapsAPI
import Metadata
import Platform
import Postgres

func run(_ cli: inout CommandLineArguments) throws {
    guard let command = cli.positional.first, !cli.flags.contains("--help") else {
        print(usage)
        if cli.positional.isEmpty && !cli.flags.contains("--help") { throw CLIError(message: "no command given", code: 2) }
        return
    }
    let configFile = cli.take("--config")
    func config() throws -> TesseraConfig {
        do { return try TesseraConfig.load(file: configFile) } catch { throw CLIError(message: "configuration: \(error)") }
    }
    switch command {
    case "migrate":
        try cli.finish()
        let conf = try config()
        let c = try PGConnection(conf.databaseURL)
        let applied = try Migrator().migrate(c)
        print(applied.isEmpty ? "schema is up to date" : "applied: \(applied.joined(separator: ", "))")
        if let report = try Migrator.isolationUpgradeReport(c, applied: applied) { print(report) }
        for line in try connectionPolicyReport(conf, c) { print("warning: \(line)") }
    case "warehouse-register":
        try cli.finish()
        try warehouseRegister(try config())
    case "check-config":
        try cli.finish()
        let c: TesseraConfig
        do { c = try TesseraConfig.load(file: configFile) } catch let e as TesseraConfig.Invalid {
            for problem in e.problems { print("invalid: \(problem)") }
            throw CLIError(message: "configuration has \(e.problems.count) problem(s)")
        }
        _ = try Secrets.load(path: c.secretKeyFile)
        print("configuration OK (\(c.source))")
    case "config-docs":
        let readme = cli.take("--readme")
        try cli.finish()
        guard let readme else { print(ConfigKeys.markdown(), terminator: ""); return }
        let text = try String(contentsOfFile: readme, encoding: .utf8)
        guard let updated = ConfigDocs.replacingSection(in: text) else {
            throw CLIError(message: "\(readme) has no config-keys markers")
        }
        if updated != text { try updated.write(toFile: readme, atomically: true, encoding: .utf8) }
        print(updated == text ? "\(readme) is up to date" : "rewrote the configuration section of \(readme)")
    case "init-secret":
        try cli.finish()
        guard cli.positional.count == 2 else { throw CLIError(message: "usage: tessera init-secret PATH", code: 2) }
        try Secrets.generate(path: cli.positional[1])
    case "create-admin":
        try createAdmin(&cli, try config())
    case "tokens":
        try tokens(&cli, try config())
    case "tileset":
        try tileset(&cli, try config())
    case "jobs":
        try jobs(&cli, try config())
    case "lds":
        try lds(&cli, try config())
    case "selftest":
        try selftest(&cli, try config())
    case "warehouse-migrate":
        let email = try cli.require("--email")
        let name = cli.take("--connection") ?? "carto_dw"
        try cli.finish()
        let services = try Services(config: try config())
        guard let user = try AccountStore(services.metadata).userByEmail(email) else { throw CLIError(message: "no user \(email)") }
        let pool = try services.warehouses.privilegedPool(for: try services.warehouses.connection(account: user.accountId, name: name))
        let applied = try pool.withConnection { try WarehouseMigrations.apply($0) }
        print("applied to \(name): \(applied.joined(separator: ", "))")
        // postgis_raster is not a trusted extension: only a superuser role can create it (raster imports need it).
        do {
            try pool.withConnection { _ = try $0.execute("CREATE EXTENSION IF NOT EXISTS postgis_raster") }
        } catch {
            print("postgis_raster not installed (\(error)); a superuser must run CREATE EXTENSION postgis_raster for raster imports")
        }
    case "password-reset-link":
        let email = try cli.require("--email")
        let c = try config()
        let base = cli.take("--base-url") ?? c.publicURL
        try cli.finish()
        let pool = PGPool(conninfo: c.databaseURL, size: 1)
        guard let user = try AccountStore(pool).userByEmail(email) else { throw CLIError(message: "no user \(email)") }
        print(PasswordResetStore.link(base: base, token: try PasswordResetStore(pool).create(userId: user.id, force: true)!))
    case "admin-password":
        try adminPassword(&cli)
    case "admin-apply":
        try adminApply(&cli, configFile: configFile)
    case "backup":
        try backup(&cli, try config())
    case "restore":
        try restore(&cli, try config())
    case "status":
        try cli.finish()
        let conf = try config()
        let c = try PGConnection(conf.databaseURL)
        let migrator = try Migrator()
        let r = try c.execute("SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM users), (SELECT count(*) FROM connections)")
        print("schema version \(try migrator.currentVersion(c)) of \(migrator.latestVersion)")
        print("accounts \(r.string(0, 0)!), users \(r.string(0, 1)!), connections \(r.string(0, 2)!)")
        for line in try connectionPolicyReport(conf, c) { print("warning: \(line)") }
    default:
        print(usage)
        throw CLIError(message: "unknown command \(command)", code: 2)
    }
}

/// The first admin also gets the embedded `carto_dw` connection when TESSERA_WAREHOUSE_URL is set.
func createAdmin(_ cli: inout CommandLineArguments, _ config: TesseraConfig) throws {
    let email = try cli.require("--email")
    var password = cli.take("--password")
    if let file = cli.take("--password-file") {
        password = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .newlines)
    }
    let organization = cli.take("--organization") ?? "Tessera"
    try cli.finish()
    guard let password else { throw CLIError(message: "give --password or --password-file", code: 2) }
    if let problem = PasswordHasher.policyViolation(password) { throw CLIError(message: problem, code: 2) }
    let services = try Services(config: config)
    let accounts = AccountStore(services.metadata)
    if let existing = try accounts.userByEmail(email) {
        if cli.flags.contains("--if-missing") { print("admin \(email) already exists"); return }
        throw CLIError(message: "a user with email \(email) already exists (account \(existing.accountId))")
    }
    guard let user = try accounts.createOrganization(name: organization, email: email, passwordHash: try PasswordHasher.hash(password)) else {
        throw CLIError(message: "could not create the admin")
    }
    print("created admin \(email) in organisation \(organization)")
    let isFirst = try services.metadata.withConnection { try $0.execute("SELECT count(*) FROM accounts").int(0, 0) == 1 }
    guard isFirst, !config.warehouseURL.isEmpty else { return }
    print("\(try registerEmbeddedWarehouse(services, accountId: user.accountId, userId: user.id)) for organisation \(organization)")
    let warehouse = try PGConnection(config.warehouseURL)
    print("installed in carto_dw: \(try WarehouseMigrations.apply(warehouse).joined(separator: ", "))")
}

func tokens(_ cli: inout CommandLineArguments, _ config: TesseraConfig) throws {
    let sub = cli.positional.dropFirst().first ?? ""
    let email = try cli.require("--email")
    let services = try Services(config: config)
    guard let user = try AccountStore(services.metadata).userByEmail(email) else { throw CLIError(message: "no user \(email)") }
    let store = TokenStore(services.metadata)
    func tokenString(_ t: TokenRecord) -> String { services.auth.apiTokenString(account: t.accountId, id: t.id) }
    switch sub {
    case "create":
        let connection = cli.take("--connection") ?? "carto_dw"
        let source = cli.take("--source") ?? "*"
        let apis = (cli.take("--apis") ?? "sql,maps").split(separator: ",").map(String.init)
        let expires = try cli.take("--expires").map { text -> Date in
            guard let d = TokenRecord.parseDate(text) else { throw CLIError(message: "--expires must be ISO 8601", code: 2) }
            return d
        }
        try cli.finish()
        let t = try store.create(account: user.accountId, createdBy: user.id, grants: [Grant(connectionName: connection, source: source)],
                                 referers: [], allowedAPIs: apis, expiresAt: expires)
        print(tokenString(t))
    case "list":
        try cli.finish()
        for t in try store.list(account: user.accountId) {
            print("\(t.id)  apis=\(t.allowedAPIs.joined(separator: ","))  grants=\(t.grants.map { "\($0.connectionName):\($0.source)" }.joined(separator: " "))")
        }
    case "delete":
        let id = try cli.require("--id")
        try cli.finish()
        guard try store.delete(id: id, account: user.accountId) else { throw CLIError(message: "no token \(id)") }
        services.auth.forgetToken(id: id)
        print("deleted \(id)")
    default:
        throw CLIError(message: "usage: tessera tokens create|list|delete --email E …", code: 2)
    }
}

/// Pre-generates a tileset in a warehouse, printing progress per zoom.
func tileset(_ cli: inout CommandLineArguments, _ config: TesseraConfig) throws {
    guard cli.positional.dropFirst().first == "create" else {
        throw CLIError(message: "usage: tessera tileset create --email E --name SCHEMA.TILESET (--table T | --query SQL) …", code: 2)
    }
    let email = try cli.require("--email")
    var options = TilesetBuilder.Options(name: try cli.require("--name"))
    options.table = cli.take("--table")
    options.query = cli.take("--query")
    guard (options.table == nil) != (options.query == nil) else { throw CLIError(message: "give exactly one of --table or --query", code: 2) }
    let connection = cli.take("--connection") ?? "carto_dw"
    if let z = cli.take("--minzoom") { options.minzoom = Int(z) ?? -1 }
    if let z = cli.take("--maxzoom") { options.maxzoom = Int(z) ?? -1 }
    if let c = cli.take("--spatial-column") { options.spatialColumn = c }
    if let c = cli.take("--columns") { options.columns = c.split(separator: ",").map(String.init) }
    // Spatial-index tilesets (h3TilesetSource / quadbinTilesetSource): zooms are tile resolutions.
    let index = cli.take("--spatial-index")
    let boundary = cli.flags.contains("--boundary")
    let aggregationExp = cli.take("--aggregation-exp") ?? "count(*) AS count"
    let level = try cli.take("--aggregation-res-level").map { text -> Int in
        guard let n = Int(text), (0...16).contains(n) else { throw CLIError(message: "--aggregation-res-level must be 0-16", code: 2) }
        return n
    }
    try cli.finish()
    let services = try Services(config: config)
    guard let user = try AccountStore(services.metadata).userByEmail(email) else { throw CLIError(message: "no user \(email)") }
    let record = try services.warehouses.connection(account: user.accountId, name: connection)
    let pool = try services.warehouses.privilegedPool(for: record)
    do {
        let summary = try pool.withConnection { db in
            if boundary {
                return try BoundaryTileset.build(connection: db, options: options) { zoom, pieces in
                    print("zoom \(zoom): \(pieces) boundary pieces")
                }
            }
            if let index {
                return try IndexTilesetBuilder.build(connection: db, options: options, index: index, aggregationExp: aggregationExp,
                                                     aggregationResLevel: level) { resolution, written in
                    print("resolution \(resolution): \(written) tiles written")
                }
            }
            return try TilesetBuilder.build(connection: db, options: options) { zoom, done, written in
                print("zoom \(zoom): \(done) tiles visited, \(written) written")
            }
        }
        print(String(format: "tileset %@: %d tiles, %.1f MB in %.1f s", options.name, summary.tiles, Double(summary.bytes) / 1e6, summary.seconds))
    } catch let e as APIError {
        throw CLIError(message: e.message)
    }
}

/// `tessera jobs list|show|retry|cancel`: the queue as operators see it.
func jobs(_ cli: inout CommandLineArguments, _ config: TesseraConfig) throws {
    let sub = cli.positional.dropFirst().first ?? "list"
    let queue = JobQueue(pool: PGPool(conninfo: config.databaseURL, size: 1))
    func id() throws -> Int64 {
        guard let text = cli.positional.dropFirst(2).first, let id = Int64(text) else {
            throw CLIError(message: "usage: tessera jobs \(sub) ID", code: 2)
        }
        return id
    }
    switch sub {
    case "list":
        let name = cli.take("--queue"), state = cli.take("--state")
        let limit = Int(cli.take("--limit") ?? "50") ?? 50
        try cli.finish()
        for job in try queue.list(queue: name, state: state, limit: limit) {
            let error = job.lastError.map { "  error: \($0.prefix(80))" } ?? ""
            print("\(job.id)  \(job.queue)/\(job.kind)  \(job.state)  attempt \(job.attempt)/\(job.maxAttempts)  \(job.createdAt)\(error)")
        }
    case "show":
        let job = try id()
        try cli.finish()
        guard let found = try queue.find(id: job) else { throw CLIError(message: "no job \(job)") }
        print(found.json.text)
    case "retry":
        let job = try id()
        try cli.finish()
        guard try queue.retry(id: job) else { throw CLIError(message: "job \(job) is not final or does not exist") }
        print("job \(job) queued again")
    case "cancel":
        let job = try id()
        try cli.finish()
        guard let state = try queue.cancel(id: job) else { throw CLIError(message: "no job \(job)") }
        print(state == "running" ? "job \(job) will stop at its next heartbeat" : "job \(job) is \(state)")
    default:
        throw CLIError(message: "usage: tessera jobs list [--queue Q] [--state S] | show ID | retry ID | cancel ID", code: 2)
    }
}
