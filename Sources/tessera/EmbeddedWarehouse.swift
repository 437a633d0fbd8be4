import Config
import CryptoSupport
import Foundation
import MapsAPI
import Platform
import Postgres

/// The embedded warehouse's credentials as TESSERA_WAREHOUSE_URL gives them: the password inline or in a
/// libpq passfile (packaging keeps it there, generated at setup, so the conffile holds no secret).
func warehouseCredentials(_ config: TesseraConfig) throws -> (info: [String: String], password: String?) {
    guard let info = PGConnection.parseConninfo(config.warehouseURL) else {
        throw CLIError(message: "TESSERA_WAREHOUSE_URL is not a valid conninfo")
    }
    return (info, PGConnection.password(in: info))
}

/// Registers (or re-registers) an organisation's `carto_dw` connection from TESSERA_WAREHOUSE_URL, as a
/// platform-created record. An existing `carto_dw` is rewritten only when the platform made it: marked so,
/// or from before the mark and logging in as one of the platform's own roles (the old default, which
/// the connection policy now refuses). One the organisation pointed at its own warehouse is left alone.
@discardableResult
func registerEmbeddedWarehouse(_ services: Services, accountId: String, userId: String?) throws -> String {
    let (info, password) = try warehouseCredentials(services.config)
    let sealed = try password.map { try services.warehouses.sealPassword($0) }
    let store = ConnectionStore(services.metadata)
    var record = ConnectionRecord(id: "", accountId: accountId, name: "carto_dw", host: info["host"] ?? "localhost",
                                  port: Int(info["port"] ?? "") ?? 5432, database: info["dbname"] ?? "carto_dw",
                                  username: info["user"] ?? "carto_dw", passwordSealed: sealed,
                                  sslmode: info["sslmode"] ?? "prefer", createdAt: nil, updatedAt: "", platformManaged: true)
    guard let existing = try store.find(account: accountId, name: "carto_dw") else {
        _ = try store.create(account: accountId, createdBy: userId, name: record.name, host: record.host, port: record.port,
                             database: record.database, username: record.username, passwordSealed: sealed,
                             sslmode: record.sslmode, platformManaged: true)
        return "created connection carto_dw"
    }
    let legacy = services.warehouses.policy.platformRoles.contains(existing.username)
    guard existing.platformManaged || legacy else { return "carto_dw points at another warehouse; left unchanged" }
    record.id = existing.id
    try services.metadata.withConnection { db in
        try db.execute("""
            UPDATE connections SET host = $2, port = $3, database = $4, username = $5, password_enc = decode($6, 'hex'),
                   sslmode = $7, platform_managed = true, updated_at = clock_timestamp()
            WHERE id = $1
            """, [record.id, record.host, String(record.port), record.database, record.username,
                  sealed.map(Encoding.hex), record.sslmode])
    }
    services.warehouses.forget(account: accountId, name: "carto_dw")
    return "updated connection carto_dw (\(record.username)@\(record.host))"
}

/// `tessera warehouse-register`: the first organisation's carto_dw from TESSERA_WAREHOUSE_URL (setup runs
/// it on every install and upgrade).
func warehouseRegister(_ config: TesseraConfig) throws {
    guard !config.warehouseURL.isEmpty else { print("TESSERA_WAREHOUSE_URL is empty: nothing to register"); return }
    let services = try Services(config: config)
    let first = try services.metadata.withConnection { db -> (String, String?)? in
        let r = try db.execute("""
            SELECT a.id, (SELECT u.id FROM users u WHERE u.account_id = a.id ORDER BY u.created_at LIMIT 1)
            FROM accounts a ORDER BY a.created_at, a.id LIMIT 1
            """)
        return r.rowCount == 1 ? (r.string(0, 0)!, r.string(0, 1)) : nil
    }
    guard let first else { print("no organisation yet: create-admin registers carto_dw"); return }
    print(try registerEmbeddedWarehouse(services, accountId: first.0, userId: first.1))
}

/// The startup report: every stored connection the policy refuses (made before it, or since the allow-list
/// changed), so an operator learns it before a user does. Empty when all pass.
func connectionPolicyReport(_ config: TesseraConfig, _ db: PGConnection) throws -> [String] {
    let policy = ConnectionPolicy(allowedHosts: config.connectionHostAllowlist,
                                  platformRoles: ConnectionPolicy.platformRoles(databaseURL: config.databaseURL,
                                                                                warehouseURL: config.warehouseURL))
    let r = try db.execute("""
        SELECT c.name, a.name, c.host, c.port, c.database, c.username, c.sslmode, c.platform_managed
        FROM connections c JOIN accounts a ON a.id = c.account_id ORDER BY a.name, c.name
        """)
    var lines: [String] = []
    for i in 0..<r.rowCount {
        let record = ConnectionRecord(id: "", accountId: "", name: r.string(i, 0)!, host: r.string(i, 2)!, port: r.int(i, 3)!,
                                      database: r.string(i, 4)!, username: r.string(i, 5)!, passwordSealed: nil,
                                      sslmode: r.string(i, 6)!, createdAt: nil, updatedAt: "", platformManaged: r.string(i, 7) == "t")
        do {
            _ = try policy.check(conninfo: record.conninfo(password: nil, statementTimeoutMs: nil), platformManaged: record.platformManaged)
        } catch let refusal as ConnectionPolicy.Refusal where refusal.kind != .unresolvable {
            lines.append("connection \(record.name) of organisation \(r.string(i, 1)!) is refused at use: \(refusal.message)")
        }
    }
    return lines
}
